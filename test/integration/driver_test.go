//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// guideBackend serves the CloudNativePG guide's two AWS secrets from memory, standing
// in for Secrets Manager so this test is about the driver alone.
type guideBackend struct{}

var guideSecrets = map[string]string{
	"prod/cnpg/postgres-credentials": `{"username":"postgres","password":"pa$$ w0rd\n"}`,
	"prod/cnpg/s3-credentials":       `{"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"s3cr3t/key+"}`,
}

func (guideBackend) Fetch(_ context.Context, plan *providerclass.Plan, _ provider.Identity) ([]providerclass.ObjectContent, error) {
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		v, ok := guideSecrets[o.Name]
		if !ok {
			return nil, fmt.Errorf("object %s: %w", o.Name, provider.ErrNotFound)
		}
		out[i] = providerclass.ObjectContent{Bytes: []byte(v), Version: "v1"}
	}
	return out, nil
}

// writeCounter records the API requests that are not reads, across every transport
// the client machinery builds from one rest.Config.
type writeCounter struct {
	mu     sync.Mutex
	writes []string
}

type countingTransport struct {
	c    *writeCounter
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		t.c.mu.Lock()
		t.c.writes = append(t.c.writes, r.Method+" "+r.URL.Path)
		t.c.mu.Unlock()
	}
	return t.next.RoundTrip(r)
}

// TestDriverOnRealAPIServer mounts the CloudNativePG guide's SecretProviderClass, stored
// in a real kube-apiserver, through the driver with real tmpfs mounts and a kubelet-like
// volume context, and checks the files against the plan.
func TestDriverOnRealAPIServer(t *testing.T) {
	harness.RequireRoot(t)
	api := harness.StartAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	api.CreateNamespace(t, "cnpg-system")
	api.CreateNamespace(t, "elsewhere")
	api.CreateServiceAccount(t, "cnpg-system", "cnpg-sa", nil)
	api.CreateServiceAccount(t, "elsewhere", "cnpg-sa", nil)
	spcYAML, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	api.ApplyYAML(t, filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml"))

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := api.RestConfig()
	writes := &writeCounter{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{c: writes, next: rt} })
	classes, err := driver.NewCacheClassGetter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := classes.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", guideBackend{})
	dir := t.TempDir()
	d, client := startDriver(t, classes, reg, filepath.Join(dir, "state"))

	volume := func(ns string) csiclient.Volume {
		return csiclient.Volume{
			TargetPath: filepath.Join(dir, "pods", ns, "volumes", "kubernetes.io~csi", "secrets", "mount"),
			Pod:        csiclient.Pod{Namespace: ns, Name: "cluster-1", UID: "uid-" + ns, ServiceAccount: "cnpg-sa"},
			Class:      "postgres-aws-secrets",
			MountGroup: "26",
			Tokens: map[string]csiclient.Token{"sts.amazonaws.com": {
				Token: api.Token(t, ns, "cnpg-sa", 0, "sts.amazonaws.com"), ExpiresAt: time.Now().Add(time.Hour)}},
		}
	}

	// What the files must be: the plan of the same SecretProviderClass, rendered.
	var spc secretsstorev1.SecretProviderClass
	if err := yaml.Unmarshal(spcYAML, &spc); err != nil {
		t.Fatal(err)
	}
	plan, err := providerclass.NewPlan(&spc, providerclass.Mount{Namespace: "cnpg-system", PodName: "cluster-1", ServiceAccount: "cnpg-sa"})
	if err != nil {
		t.Fatal(err)
	}
	contents, _ := guideBackend{}.Fetch(ctx, plan, provider.Identity{})
	want, err := plan.Render(contents)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 6 {
		t.Fatalf("plan renders %d files, want the guide's 6", len(want))
	}

	v := volume("cnpg-system")
	t.Run("publish mounts a tmpfs holding exactly the planned files", func(t *testing.T) {
		for range 2 { // the second, identical publish must not mount again
			if err := client.Publish(ctx, v); err != nil {
				t.Fatalf("NodePublishVolume: %v", err)
			}
		}
		mounts := tmpfsMounts(t, v.TargetPath)
		if len(mounts) != 1 {
			t.Fatalf("%d tmpfs mounts at the target, want 1", len(mounts))
		}
		for _, o := range []string{"nosuid", "nodev", "noexec"} {
			if !strings.Contains(","+mounts[0]+",", ","+o+",") {
				t.Errorf("tmpfs options %s lack %s", mounts[0], o)
			}
		}
		entries, err := os.ReadDir(v.TargetPath)
		if err != nil {
			t.Fatal(err)
		}
		visible := 0
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "..") {
				visible++
			}
		}
		if visible != len(want) {
			t.Errorf("%d files in the mount, want %d", visible, len(want))
		}
		for _, f := range want {
			p := filepath.Join(v.TargetPath, f.Path)
			got, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: %v", f.Path, err)
				continue
			}
			if string(got) != string(f.Bytes) {
				t.Errorf("%s: content differs from the plan (%d bytes, want %d)", f.Path, len(got), len(f.Bytes))
			}
			fi, _ := os.Stat(p)
			if wantMode := f.Mode.Perm() | 0o040; fi.Mode().Perm() != wantMode {
				t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), wantMode)
			}
		}
		if got, _ := os.ReadFile(filepath.Join(v.TargetPath, "db-password")); string(got) != "pa$$ w0rd\n" {
			t.Errorf("db-password = %q, want the exact bytes", got)
		}
		vols := d.Volumes()
		if len(vols) != 1 || vols[0].Class != (types.NamespacedName{Namespace: "cnpg-system", Name: "postgres-aws-secrets"}) {
			t.Errorf("volume table = %+v", vols)
		}
	})

	t.Run("a pod of another namespace cannot use the class", func(t *testing.T) {
		other := volume("elsewhere")
		err := client.Publish(ctx, other)
		if status.Code(err) != codes.NotFound {
			t.Fatalf("NodePublishVolume: %v, want NotFound", err)
		}
		if !strings.Contains(err.Error(), "elsewhere/postgres-aws-secrets") {
			t.Errorf("error %q does not name the class looked up", err)
		}
		if _, err := os.Stat(other.TargetPath); !os.IsNotExist(err) {
			t.Errorf("refused publish left the target: %v", err)
		}
	})

	t.Run("unpublish unmounts and removes the target", func(t *testing.T) {
		if err := client.Unpublish(ctx, v); err != nil {
			t.Fatalf("NodeUnpublishVolume: %v", err)
		}
		if m := tmpfsMounts(t, v.TargetPath); len(m) != 0 {
			t.Errorf("still mounted: %v", m)
		}
		if _, err := os.Stat(v.TargetPath); !os.IsNotExist(err) {
			t.Errorf("target still there: %v", err)
		}
		if len(d.Volumes()) != 0 {
			t.Errorf("volume still in the table")
		}
	})

	writes.mu.Lock()
	defer writes.mu.Unlock()
	if len(writes.writes) != 0 {
		t.Errorf("the mount path wrote to the API server: %v", writes.writes)
	}
}

// tmpfsMounts returns the options of each tmpfs mounted at path.
func tmpfsMounts(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 3 && fields[1] == path && fields[2] == "tmpfs" {
			out = append(out, fields[3])
		}
	}
	return out
}
