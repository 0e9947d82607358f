//go:build integration

package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/harness"
)

// TestIsolationClassOfAnotherNamespace: a pod names a SecretProviderClass that exists
// only in another namespace. The driver looks the class up in the pod's own namespace
// and answers NotFound naming that namespace and class, before any backend call and
// without mounting anything; not before the class's own namespace mounted it (its
// content in the backend's caches), and not after. test/integration's
// TestDriverOnRealAPIServer checks the same refusal with an in-memory backend; here the
// backend is the real AWS one in front of moto, and the backend requests are counted.
func TestIsolationClassOfAnotherNamespace(t *testing.T) {
	harness.RequireRoot(t)
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	moto := harness.SharedMoto(t)
	proxy := harness.NewCountingProxy(t, moto.Endpoint, isoAWSCaller)

	owner, other := api.NewNamespace(t), api.NewNamespace(t)
	role := "arn:aws:iam::123456789012:role/isolation"
	for _, ns := range []string{owner, other} {
		api.CreateServiceAccount(t, ns, "app", map[string]string{aws.RoleAnnotation: role})
	}
	name, value := "isolation/"+owner+"/db", isoValue(t, "class")
	if _, err := secretsmanager.NewFromConfig(moto.AWSConfig()).CreateSecret(context.Background(),
		&secretsmanager.CreateSecretInput{Name: &name, SecretString: &value}); err != nil {
		t.Fatal(err)
	}
	api.ApplyManifest(t, `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: db, namespace: `+owner+`}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: "`+name+`", objectType: secretsmanager, objectAlias: db}
`)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	roles, err := aws.NewServiceAccountRoles(api.Client, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := roles.Start(ctx); err != nil {
		t.Fatal(err)
	}
	backend, err := aws.New(ctx, aws.Options{DefaultRegion: harness.MotoRegion, Endpoint: proxy.URL, Roles: roles, MaxAttempts: 1, Logger: harness.LeakLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", backend)
	d, c := startIsolationDriver(t, api, reg)

	refused := func(t *testing.T) {
		t.Helper()
		proxy.Take()
		v := isoVolume(t, api, other, "app", "db", "sts.amazonaws.com")
		err := isoPublish(t, c, v)
		if status.Code(err) != codes.NotFound {
			t.Fatalf("NodePublishVolume in %s: %v, want NotFound", other, err)
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, other+"/db") {
			t.Errorf("error %q does not name the class looked up, %s/db", msg, other)
		}
		if strings.Contains(err.Error(), value) {
			t.Errorf("the refusal carries the value")
		}
		if _, err := os.Stat(v.TargetPath); !os.IsNotExist(err) {
			t.Errorf("the refused publish left its target: %v", err)
		}
		if m := tmpfsAt(t, v.TargetPath); m {
			t.Errorf("the refused publish mounted a tmpfs")
		}
		for _, pv := range d.Volumes() {
			if pv.Class.Namespace == other {
				t.Errorf("the volume table holds a volume of %s: %+v", other, pv)
			}
		}
		if got := proxy.Take(); len(got) != 0 {
			t.Errorf("the refused publish reached the backend: %v", got)
		}
	}

	t.Run("refused before the owner mounts", refused)
	t.Run("the owner's namespace mounts it", func(t *testing.T) {
		v := isoVolume(t, api, owner, "app", "db", "sts.amazonaws.com")
		if err := isoPublish(t, c, v); err != nil {
			t.Fatalf("NodePublishVolume in %s: %v", owner, err)
		}
		got, err := os.ReadFile(filepath.Join(v.TargetPath, "db"))
		if err != nil || string(got) != value {
			t.Fatalf("db: %d bytes (%v), want the seeded value", len(got), err)
		}
		// The owner's content now sits in the backend's coalescing window and content
		// memory when the next refusal is asked for.
	})
	t.Run("refused while the owner's content is cached", refused)
}

// tmpfsAt reports whether a tmpfs is mounted at path.
func tmpfsAt(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == path && f[2] == "tmpfs" {
			return true
		}
	}
	return false
}
