//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// TestVaultThroughTheDriver mounts the guide's SecretProviderClass, stored in the real
// API server, through the real CSI driver (NodePublishVolume on its socket, tmpfs, atomic
// writer) with the Vault backend and a real ServiceAccount token, as kubelet would.
func TestVaultThroughTheDriver(t *testing.T) {
	harness.RequireRoot(t)
	e := startVaultEnv(t)
	e.api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	spc, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), "cnpg-vault-secretproviderclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture names the in-cluster Vault; everything else is applied as it is.
	guide := strings.Replace(string(spc), "http://vault.vault-system:8200", e.vault.Addr, 1)
	e.api.ApplyManifest(t, guide)
	e.api.CreateServiceAccount(t, "cnpg-system", "intruder", nil)
	e.setupApps(t)
	// The guide's class copied to namespace apps, where a ServiceAccount named cnpg-sa
	// exists too: Vault binds the role to the namespace as well as the name.
	e.api.ApplyManifest(t, strings.Replace(guide, "namespace: cnpg-system", "namespace: apps", 1))
	e.api.ApplyManifest(t, `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: app-objects, namespace: apps}
spec:
  provider: vault
  parameters:
    roleName: apps
    vaultAddress: `+e.vault.Addr+`
    objects: |
      - {objectName: kv1-token, secretPath: kv1/plain, secretKey: token}
      - {objectName: b64, secretPath: kv1/plain, secretKey: b64, encoding: base64}
      - {objectName: hex, secretPath: kv1/plain, secretKey: hex, encoding: hex}
      - {objectName: first, secretPath: "cnpg/data/versioned?version=1", secretKey: password}
      - {objectName: latest, secretPath: cnpg/versioned, secretKey: password}
      - objectName: nested
        secretPath: cnpg/nested
        jmesPath:
          - {path: db.owner.user, objectAlias: owner-user}
          - {path: db.owner.password, objectAlias: owner-password}
`)
	pg := e.setupDatabase(t)
	e.api.ApplyManifest(t, `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: db-creds, namespace: cnpg-system}
spec:
  provider: vault
  parameters:
    roleName: db-app
    vaultAddress: `+e.vault.Addr+`
    objects: |
      - {objectName: username, secretPath: database/creds/app, secretKey: username}
      - {objectName: password, secretPath: database/creds/app, secretKey: password}
`)
	ctrllog.SetLogger(logr.Discard())

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	classes, err := driver.NewCacheClassGetter(e.api.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := classes.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The backend's clock is the test's, to reach the renew point of a lease without
	// waiting; moving it also ends the coalescing window between republishes.
	clock := &testClock{now: time.Now()}
	backend, err := vault.New(vault.Options{
		Keys: &vault.SecretKeySource{Client: e.api.Client, Namespace: "cnpg-system", Name: "secretmount-vault-version-key"},
		Now:  clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("vault", backend)
	_, client := startDriver(t, classes, reg, "")

	volumeIn := func(t *testing.T, ns, sa, class string) csiclient.Volume {
		return csiclient.Volume{
			TargetPath: filepath.Join(t.TempDir(), "secrets"),
			Pod:        csiclient.Pod{Namespace: ns, Name: "pod-" + sa, UID: "uid-" + ns + "-" + sa, ServiceAccount: sa},
			Class:      class,
			Tokens:     map[string]csiclient.Token{"vault": {Token: e.api.Token(t, ns, sa, 0, "vault"), ExpiresAt: time.Now().Add(time.Hour)}},
		}
	}
	volume := func(t *testing.T, sa string, class ...string) csiclient.Volume {
		c := "postgres-vault-secrets"
		if len(class) > 0 {
			c = class[0]
		}
		return volumeIn(t, "cnpg-system", sa, c)
	}

	t.Run("guide setup mounted as files", func(t *testing.T) {
		v := volume(t, "cnpg-sa")
		if err := client.Publish(ctx, v); err != nil {
			t.Fatalf("NodePublishVolume: %v", err)
		}
		t.Cleanup(func() {
			if err := client.Unpublish(context.Background(), v); err != nil {
				t.Errorf("NodeUnpublishVolume: %v", err)
			}
		})
		for name, want := range map[string]string{
			"db-username": "postgres", "db-password": "your-secure-password",
			"s3-access-key": "your-access-key", "s3-secret-key": "your-secret-key",
		} {
			got, err := os.ReadFile(filepath.Join(v.TargetPath, name))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if string(got) != want {
				t.Errorf("%s: got %q, want %q", name, got, want)
			}
		}
	})

	t.Run("kv1, version, nested key, encodings", func(t *testing.T) {
		v := volumeIn(t, "apps", "app-sa", "app-objects")
		if err := client.Publish(ctx, v); err != nil {
			t.Fatalf("NodePublishVolume: %v", err)
		}
		t.Cleanup(func() {
			if err := client.Unpublish(context.Background(), v); err != nil {
				t.Errorf("NodeUnpublishVolume: %v", err)
			}
		})
		for name, want := range map[string]string{
			"kv1-token": "kv1-token", "b64": "hello world", "hex": "hello", "first": "first", "latest": "second",
			"owner-user": "app", "owner-password": "n3sted",
		} {
			got, err := os.ReadFile(filepath.Join(v.TargetPath, name))
			if err != nil || string(got) != want {
				t.Errorf("%s: got %q (%v), want %q", name, got, err, want)
			}
		}
	})

	t.Run("50 concurrent publishes: one login, one read per secret", func(t *testing.T) {
		proxy := harness.NewCountingProxy(t, e.vault.Addr, harness.MethodPath)
		// A ServiceAccount of its own, so no Vault token is cached for it yet.
		e.api.CreateServiceAccount(t, "cnpg-system", "burst-sa", nil)
		e.write(t, "auth/kubernetes/role/burst", map[string]any{
			"bound_service_account_names": []string{"burst-sa"}, "bound_service_account_namespaces": []string{"cnpg-system"},
			"policies": []string{"cnpg-policy"}, "ttl": "1h",
		})
		e.api.ApplyManifest(t, strings.NewReplacer(
			"name: postgres-vault-secrets", "name: postgres-vault-burst",
			"roleName: cnpg", "roleName: burst",
			e.vault.Addr, proxy.URL,
		).Replace(guide))
		token := csiclient.Token{Token: e.api.Token(t, "cnpg-system", "burst-sa", 0, "vault"), ExpiresAt: time.Now().Add(time.Hour)}
		volumes := make([]csiclient.Volume, 50)
		for i := range volumes {
			volumes[i] = csiclient.Volume{
				TargetPath: filepath.Join(t.TempDir(), "secrets"),
				Pod:        csiclient.Pod{Namespace: "cnpg-system", Name: fmt.Sprintf("burst-%d", i), UID: fmt.Sprintf("burst-uid-%d", i), ServiceAccount: "burst-sa"},
				Class:      "postgres-vault-burst",
				Tokens:     map[string]csiclient.Token{"vault": token},
			}
		}
		var wg gosync.WaitGroup
		errs := make([]error, len(volumes))
		for i, v := range volumes {
			wg.Go(func() { errs[i] = client.Publish(ctx, v) })
		}
		wg.Wait()
		t.Cleanup(func() {
			for _, v := range volumes {
				_ = client.Unpublish(context.Background(), v)
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		for _, v := range volumes {
			if got, err := os.ReadFile(filepath.Join(v.TargetPath, "db-password")); err != nil || string(got) != "your-secure-password" {
				t.Fatalf("%s: db-password %q (%v)", v.Pod.Name, got, err)
			}
		}
		for path, want := range map[string]int{
			"POST /v1/auth/kubernetes/login":         1,
			"GET /v1/cnpg/data/postgres-credentials": 1,
			"GET /v1/cnpg/data/s3-credentials":       1,
		} {
			if got := proxy.Count(path); got != want {
				t.Errorf("%s: %d requests, want %d", path, got, want)
			}
		}
	})

	refused := []struct {
		name   string
		ns, sa string
	}{
		{"service account not bound to the role", "cnpg-system", "intruder"},
		{"bound name in another namespace", "apps", "cnpg-sa"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := client.Publish(ctx, volumeIn(t, tc.ns, tc.sa, "postgres-vault-secrets"))
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("NodePublishVolume: %v, want PermissionDenied", err)
			}
			msg := status.Convert(err).Message()
			for _, m := range []string{`role "cnpg"`, "objects[0]", "cnpg/data/postgres-credentials", tc.ns + "/" + tc.sa} {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not name %s", msg, m)
				}
			}
			if strings.Contains(msg, "your-secure-password") {
				t.Errorf("error reveals a value")
			}
		})
	}

	t.Run("dynamic credentials across republishes", func(t *testing.T) {
		v := volume(t, "db-sa", "db-creds")
		publish := func() map[string]string {
			t.Helper()
			if err := client.Publish(ctx, v); err != nil {
				t.Fatalf("NodePublishVolume: %v", err)
			}
			files := map[string]string{}
			for _, name := range []string{"username", "password"} {
				b, err := os.ReadFile(filepath.Join(v.TargetPath, name))
				if err != nil {
					t.Fatal(err)
				}
				files[name] = string(b)
			}
			return files
		}
		first := publish()
		t.Cleanup(func() {
			if err := client.Unpublish(context.Background(), v); err != nil {
				t.Errorf("NodeUnpublishVolume: %v", err)
			}
		})
		assertLogin(t, pg, first)
		// kubelet republishes (requiresRepublish) on every sync: ten of them within
		// the lease leave the files as they are and mint nothing.
		for i := range 10 {
			clock.advance(3 * time.Minute)
			if got := publish(); got["username"] != first["username"] || got["password"] != first["password"] {
				t.Fatalf("republish %d changed the credentials within the lease", i+1)
			}
		}
		if n := e.leaseCount(t); n != 1 {
			t.Fatalf("Vault leases after ten republishes: %d, want 1", n)
		}
		e.write(t, "sys/leases/revoke-prefix/database/creds/app", nil)
		clock.advance(time.Hour)
		next := publish()
		if next["username"] == first["username"] {
			t.Fatalf("credentials were not replaced once the lease could not be renewed")
		}
		assertLogin(t, pg, next)
	})
}
