//go:build integration

package interop

import (
	"context"
	"fmt"
	"github.com/secretmount/secretmount/test/harness"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// documentBackend is a backend of test code: each object's content is a JSON document
// chosen by its name, so the guide's extractions have fields to pick.
type documentBackend struct{}

func (documentBackend) Fetch(_ context.Context, plan *providerclass.Plan, _ provider.Identity) ([]providerclass.ObjectContent, error) {
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		doc := fmt.Sprintf(`{"username":"user-of-%[1]s","password":"pw\u00e9\n%[1]s","accessKeyId":"AKIA-%[1]s","secretAccessKey":"sk/+%[1]s"}`, o.Name)
		out[i] = providerclass.ObjectContent{Bytes: []byte(doc), Version: "1-" + o.Name}
	}
	return out, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// interop mounts spc (already stored in ns) through the upstream driver, which calls
// our provider server answering as spc's provider, and through our own driver with the
// same backends, and checks that both mounts hold the same files, byte for byte and mode
// for mode, and that the upstream driver recorded our object versions.
func interop(t *testing.T, ns, serviceAccount string, class string, providerName string, reg *provider.Registry, audiences ...string) map[string]mountedFile {
	t.Helper()
	serve := func(dir string) { serveOurProvider(t, dir, providerName, reg) }
	return interopWith(t, ns, serviceAccount, class, serve, reg, audiences...)
}

// podSeq keeps pod names unique within the test binary.
var podSeq atomic.Int32

// interopWith is interop with the provider started by serve in the given folder.
func interopWith(t *testing.T, ns, serviceAccount, class string, serve func(dir string), reg *provider.Registry, audiences ...string) map[string]mountedFile {
	t.Helper()
	api := cluster(t)
	nodeID := "interop-" + ns
	pod := createPod(t, api, ns, fmt.Sprintf("app-%d", podSeq.Add(1)), serviceAccount, nodeID)
	providers := t.TempDir()
	serve(providers)
	upstream := startUpstreamDriver(t, api.Kubeconfig, nodeID, providers)
	ours := startOurDriver(t, api, nodeID, reg, 30*time.Second)

	m := kubeletMount{
		Class: class, Namespace: ns, PodName: pod.Name, PodUID: string(pod.UID), ServiceAccount: serviceAccount,
		Tokens: kubeletTokens(t, api, ns, serviceAccount, audiences...),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	up := m
	up.Target = targetPath(t, m.PodUID)
	if err := publish(ctx, upstream.node, up); err != nil {
		t.Fatalf("upstream NodePublishVolume: %v", err)
	}
	own := m
	own.Target = targetPath(t, m.PodUID)
	if err := publish(ctx, ours, own); err != nil {
		t.Fatalf("our NodePublishVolume: %v", err)
	}
	upFiles, ownFiles := readMount(t, up.Target), readMount(t, own.Target)
	sameMount(t, "upstream driver through secretmount provider vs secretmount driver", ownFiles, upFiles)
	t.Logf("both drivers wrote the same %d files: %v", len(upFiles), fileNames(upFiles))

	versions := podStatusObjects(t, api, ns, pod.Name, class)
	if len(versions) == 0 {
		t.Errorf("the upstream driver recorded no object versions")
	}
	for id, v := range versions {
		if v == "" {
			t.Errorf("object %s has an empty version in the pod status", id)
		}
	}

	for _, c := range []struct {
		name string
		err  error
	}{{"upstream", unpublish(ctx, upstream.node, up)}, {"ours", unpublish(ctx, ours, own)}} {
		if c.err != nil {
			t.Errorf("%s NodeUnpublishVolume: %v", c.name, c.err)
		}
	}
	if fileExists(up.Target) {
		if left := readMount(t, up.Target); len(left) != 0 {
			t.Errorf("upstream unpublish left %d files", len(left))
		}
	}
	return ownFiles
}

// TestUpstreamDriverThroughOurProviderServer proves the path with a backend of test
// code registered in our provider server under "aws", so the guide's class is planned
// in the AWS dialect exactly as our driver plans it.
func TestUpstreamDriverThroughOurProviderServer(t *testing.T) {
	requireRoot(t)
	api := cluster(t)
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "cnpg", nil)
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	storeClass(t, api, ns, spc)
	reg := provider.NewRegistry()
	reg.Register("aws", documentBackend{})

	files := interop(t, ns, "cnpg", spc.Name, "aws", reg, "sts.amazonaws.com")
	want := []string{"prod_cnpg_postgres-credentials", "db-username", "db-password", "prod_cnpg_s3-credentials", "s3-access-key", "s3-secret-key"}
	for _, n := range want {
		f, ok := files[n]
		if !ok {
			t.Errorf("file %s missing", n)
			continue
		}
		if f.Mode != providerclass.DefaultFileMode {
			t.Errorf("%s mode %o", n, f.Mode)
		}
	}
	if string(files["db-username"].Bytes) != "user-of-prod/cnpg/postgres-credentials" {
		t.Errorf("db-username is not the extracted field")
	}
}
