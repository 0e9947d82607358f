package install

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/secretmount/secretmount/cmd/secretmount/app"
)

// limitFlags are the load-limit flags the chart passes, per secretmount container.
var limitFlags = map[string][]string{
	"secrets-store": {"kube-api-qps", "kube-api-burst"},
	"sync":          {"kube-api-qps", "kube-api-burst", "max-concurrent-reconciles"},
}

// parsedFlags parses a secretmount container's arguments with the real command tree
// and returns, per flag in names, the parsed value and the flag's built-in default.
func parsedFlags(t *testing.T, c map[string]any, names []string) (got, def map[string]string) {
	t.Helper()
	root := app.NewCommand()
	cmd, rest, err := root.Find(args(t, c))
	if err != nil || cmd == root {
		t.Fatalf("%v is not a secretmount subcommand: %v", args(t, c), err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("secretmount %s does not accept %v: %v", cmd.Name(), rest, err)
	}
	got, def = map[string]string{}, map[string]string{}
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil {
			t.Fatalf("secretmount %s has no --%s", cmd.Name(), n)
		}
		if !f.Changed {
			t.Errorf("secretmount %s: the chart does not pass --%s", cmd.Name(), n)
		}
		got[n], def[n] = f.Value.String(), f.DefValue
	}
	return got, def
}

// limitContainers renders the chart and returns the driver and sync containers.
func limitContainers(t *testing.T, values map[string]any) map[string]map[string]any {
	t.Helper()
	objs := render(t, Options{ReleaseName: "secretmount", Namespace: "secretmount-system", Values: values})
	return map[string]map[string]any{
		"secrets-store": containers(t, find(t, objs, "DaemonSet", "secretmount-driver"))["secrets-store"],
		"sync":          containers(t, find(t, objs, "Deployment", "secretmount-sync"))["sync"],
	}
}

// TestChartLimitDefaultsAreTheBinarys proves the chart's default load limits are the
// binary's own flag defaults, so installing with the chart behaves as running the
// binary bare, and that values set by a user reach the flags.
func TestChartLimitDefaultsAreTheBinarys(t *testing.T) {
	for name, c := range limitContainers(t, nil) {
		got, def := parsedFlags(t, c, limitFlags[name])
		for flag := range got {
			if got[flag] != def[flag] {
				t.Errorf("%s: chart default --%s=%s, binary default %s", name, flag, got[flag], def[flag])
			}
		}
	}

	values := map[string]any{
		"linux":          map[string]any{"driver": map[string]any{"kubeAPIQPS": -1, "kubeAPIBurst": 7}},
		"syncController": map[string]any{"kubeAPIQPS": 12.5, "kubeAPIBurst": 30, "maxConcurrentReconciles": 3},
	}
	want := map[string]map[string]string{
		"secrets-store": {"kube-api-qps": "-1", "kube-api-burst": "7"},
		"sync":          {"kube-api-qps": "12.5", "kube-api-burst": "30", "max-concurrent-reconciles": "3"},
	}
	for name, c := range limitContainers(t, values) {
		got, _ := parsedFlags(t, c, limitFlags[name])
		for flag, w := range want[name] {
			if got[flag] != w {
				t.Errorf("%s: --%s=%s, want %s from the values", name, flag, got[flag], w)
			}
		}
	}
}

func TestSchemaRejectsBadLimits(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		field  string
	}{
		{"zero driver qps", map[string]any{"linux": map[string]any{"driver": map[string]any{"kubeAPIQPS": 0}}}, "kubeAPIQPS"},
		{"driver burst as string", map[string]any{"linux": map[string]any{"driver": map[string]any{"kubeAPIBurst": "100"}}}, "kubeAPIBurst"},
		{"zero sync burst", map[string]any{"syncController": map[string]any{"kubeAPIBurst": 0}}, "kubeAPIBurst"},
		{"no concurrent reconciles", map[string]any{"syncController": map[string]any{"maxConcurrentReconciles": 0}}, "maxConcurrentReconciles"},
		{"fractional concurrency", map[string]any{"syncController": map[string]any{"maxConcurrentReconciles": 2.5}}, "maxConcurrentReconciles"},
	}
	dir := chartDir(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(dir, Options{Values: tc.values})
			if err == nil {
				t.Fatalf("values %v were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error does not name the schema and %s: %v", tc.field, err)
			}
		})
	}
}

// goMemLimitEnv returns the container's GOMEMLIMIT env entry, or nil.
func goMemLimitEnv(c map[string]any) map[string]any {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if em := e.(map[string]any); em["name"] == "GOMEMLIMIT" {
			return em
		}
	}
	return nil
}

// TestGoMemLimitFromMemoryLimit proves each secretmount container gets GOMEMLIMIT from
// its own memory limit only when it has one, and that the value the downward API then
// yields is one the Go runtime takes as that many bytes.
func TestGoMemLimitFromMemoryLimit(t *testing.T) {
	noMemLimit := map[string]any{"limits": map[string]any{"memory": nil}}
	tests := []struct {
		name   string
		values map[string]any
		want   map[string]string // container → memory limit; absent: no GOMEMLIMIT
	}{
		{"defaults", nil, map[string]string{"secrets-store": "256Mi", "sync": "256Mi"}},
		{"own limits", map[string]any{
			"linux":          map[string]any{"driver": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "300M"}}}},
			"syncController": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}}},
		}, map[string]string{"secrets-store": "300M", "sync": "1Gi"}},
		{"driver without memory limit", map[string]any{
			"linux": map[string]any{"driver": map[string]any{"resources": noMemLimit}},
		}, map[string]string{"sync": "256Mi"}},
		{"no memory limits", map[string]any{
			"linux":          map[string]any{"driver": map[string]any{"resources": noMemLimit}},
			"syncController": map[string]any{"resources": map[string]any{"limits": nil}},
		}, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name, c := range limitContainers(t, tc.values) {
				env := goMemLimitEnv(c)
				limit, ok := tc.want[name]
				if !ok {
					if env != nil {
						t.Errorf("%s: GOMEMLIMIT %v set without a memory limit", name, env)
					}
					continue
				}
				if env == nil {
					t.Fatalf("%s: memory limit %s but no GOMEMLIMIT", name, limit)
				}
				if got := str(nested(c, "resources", "limits", "memory")); got != limit {
					t.Fatalf("%s: rendered memory limit %q, want %q", name, got, limit)
				}
				ref, _ := nested(env, "valueFrom", "resourceFieldRef").(map[string]any)
				if ref["resource"] != "limits.memory" || ref["containerName"] != nil {
					t.Errorf("%s: GOMEMLIMIT from %v, want this container's limits.memory", name, ref)
				}
				q := resource.MustParse(limit)
				if got := runtimeMemLimit(t, downwardValue(t, q, str(ref["divisor"]))); got != q.Value() {
					t.Errorf("%s: Go runtime memory limit %d from limit %s, want %d", name, got, limit, q.Value())
				}
			}
		})
	}
}

// TestEnvValue proves linux.driver.env and syncController.env reach their containers
// after the pod fields, and that a GOMEMLIMIT among them is the container's only one.
func TestEnvValue(t *testing.T) {
	proxy := map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"}
	noProxy := map[string]any{"name": "NO_PROXY", "value": ".svc,.cluster.local"}
	own := map[string]any{"name": "GOMEMLIMIT", "value": "200MiB"}
	got := limitContainers(t, map[string]any{
		"linux":          map[string]any{"driver": map[string]any{"env": []any{proxy, own}}},
		"syncController": map[string]any{"env": []any{noProxy}},
	})
	names := func(c map[string]any) []string {
		var out []string
		for _, e := range c["env"].([]any) {
			out = append(out, str(e.(map[string]any)["name"]))
		}
		return out
	}
	if n := strings.Join(names(got["secrets-store"]), ","); n != "NODE_NAME,POD_NAMESPACE,HTTPS_PROXY,GOMEMLIMIT" {
		t.Errorf("driver env %s", n)
	}
	if env := goMemLimitEnv(got["secrets-store"]); env["value"] != "200MiB" || env["valueFrom"] != nil {
		t.Errorf("driver GOMEMLIMIT %v, want the value set in linux.driver.env", env)
	}
	if n := strings.Join(names(got["sync"]), ","); n != "POD_NAMESPACE,GOMEMLIMIT,NO_PROXY" {
		t.Errorf("sync env %s", n)
	}
	if env := goMemLimitEnv(got["sync"]); nested(env, "valueFrom", "resourceFieldRef") == nil {
		t.Errorf("sync GOMEMLIMIT %v, want it from the memory limit", env)
	}
}

// downwardValue is the string kubelet puts in the environment for a resourceFieldRef
// of a memory limit: the limit divided by the divisor, rounded up, as a plain integer
// (k8s.io/kubernetes pkg/api/v1/resource, convertResourceMemoryToString).
func downwardValue(t *testing.T, limit resource.Quantity, divisor string) string {
	t.Helper()
	d := resource.MustParse("1")
	if divisor != "" {
		var err error
		if d, err = resource.ParseQuantity(divisor); err != nil {
			t.Fatalf("divisor %q: %v", divisor, err)
		}
	}
	return strconv.FormatInt(int64(math.Ceil(float64(limit.Value())/float64(d.Value()))), 10)
}

const memLimitChildEnv = "SECRETMOUNT_TEST_PRINT_MEMLIMIT"

// runtimeMemLimit starts this test binary with GOMEMLIMIT=value and returns the memory
// limit its Go runtime took from it (the runtime reads GOMEMLIMIT only at start).
func runtimeMemLimit(t *testing.T, value string) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPrintMemLimitChild$")
	cmd.Env = append(os.Environ(), "GOMEMLIMIT="+value, memLimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOMEMLIMIT=%s: child failed: %v\n%s", value, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "memlimit="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("GOMEMLIMIT=%s: child printed no limit:\n%s", value, out)
	return 0
}

// TestPrintMemLimitChild is the child of runtimeMemLimit; run directly it does nothing.
func TestPrintMemLimitChild(t *testing.T) {
	if os.Getenv(memLimitChildEnv) == "" {
		t.Skip("only runs as the child of TestGoMemLimitFromMemoryLimit")
	}
	fmt.Printf("memlimit=%d\n", debug.SetMemoryLimit(-1))
}
