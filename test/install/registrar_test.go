package install

import (
	"reflect"
	"slices"
	"testing"

	"github.com/secretmount/secretmount/cmd/secretmount/app"
)

// TestRenderRegistrar checks both ways the driver registers with kubelet: the
// csi-node-driver-registrar sidecar (default, as upstream) and the driver's built-in
// registration (linux.registrar.builtin), which drops the sidecar, gives the driver
// the registration folder and the CSI socket path kubelet sees, and gates readiness on
// kubelet's report.
func TestRenderRegistrar(t *testing.T) {
	const root = "/var/lib/k0s/kubelet"
	const kubeletSock = root + "/plugins/csi-secrets-store/csi.sock"
	tests := []struct {
		name    string
		builtin bool
	}{
		{"sidecar", false},
		{"built in", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := render(t, Options{Values: map[string]any{"linux": map[string]any{
				"kubeletRootDir": root,
				"registrar":      map[string]any{"builtin": tt.builtin},
			}}})
			ds := find(t, objs, "DaemonSet", "secretmount-driver")
			cs := containers(t, ds)
			var names []string
			for n := range cs {
				names = append(names, n)
			}
			slices.Sort(names)
			want := []string{"liveness-probe", "node-driver-registrar", "secrets-store"}
			if tt.builtin {
				want = []string{"liveness-probe", "secrets-store"}
			}
			if !slices.Equal(names, want) {
				t.Fatalf("driver containers = %v, want %v", names, want)
			}

			driver := cs["secrets-store"]
			a := args(t, driver)
			regArgs := []string{"--registration-dir=/registration", "--kubelet-endpoint=" + kubeletSock}
			for _, r := range regArgs {
				if slices.Contains(a, r) != tt.builtin {
					t.Errorf("driver args %v: has %s = %v, want %v", a, r, !tt.builtin, tt.builtin)
				}
			}
			mounted := false
			for _, m := range driver["volumeMounts"].([]any) {
				mm := m.(map[string]any)
				if mm["name"] == "registration-dir" {
					mounted = mm["mountPath"] == "/registration"
				}
			}
			if mounted != tt.builtin {
				t.Errorf("driver mounts the registration folder at /registration = %v, want %v", mounted, tt.builtin)
			}
			probe := nested(driver, "readinessProbe", "httpGet")
			wantProbe := any(nil)
			if tt.builtin {
				wantProbe = map[string]any{"path": "/readyz", "port": "metrics"}
			}
			if !reflect.DeepEqual(probe, wantProbe) {
				t.Errorf("driver readinessProbe.httpGet = %v, want %v", probe, wantProbe)
			}
			if !tt.builtin {
				if a := args(t, cs["node-driver-registrar"]); !slices.Contains(a, "--kubelet-registration-path="+kubeletSock) {
					t.Errorf("registrar args %v do not register %s", a, kubeletSock)
				}
			}
			for _, v := range nested(ds.Object, "spec", "template", "spec", "volumes").([]any) {
				vm := v.(map[string]any)
				if vm["name"] == "registration-dir" && nested(vm, "hostPath", "path") != root+"/plugins_registry" {
					t.Errorf("registration-dir volume = %v, want hostPath %s/plugins_registry", vm, root)
				}
			}

			// The binary accepts what the chart passes.
			cmd, rest, err := app.NewCommand().Find(a)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("secretmount driver does not accept %v: %v", rest, err)
			}
		})
	}
}
