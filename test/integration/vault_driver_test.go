//go:build integration

package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
	e.api.ApplyManifest(t, strings.Replace(string(spc), "http://vault.vault-system:8200", e.vault.Addr, 1))
	e.api.CreateServiceAccount(t, "cnpg-system", "intruder", nil)
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
	// waiting; every publish reaches the backend (no coalescing window).
	clock := &testClock{now: time.Now()}
	backend, err := vault.New(vault.Options{
		Keys:           &vault.SecretKeySource{Client: e.api.Client, Namespace: "cnpg-system", Name: "secretmount-vault-version-key"},
		Now:            clock.Now,
		CoalesceWindow: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("vault", backend)
	sock := filepath.Join(t.TempDir(), "csi.sock")
	d, err := driver.New(driver.Options{Endpoint: sock, NodeID: "node-1", Classes: classes, Providers: reg, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver: %v", err)
		}
	})
	client, err := csiclient.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
	defer readyCancel()
	if err := client.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}

	volume := func(t *testing.T, sa string, class ...string) csiclient.Volume {
		c := "postgres-vault-secrets"
		if len(class) > 0 {
			c = class[0]
		}
		return csiclient.Volume{
			TargetPath: filepath.Join(t.TempDir(), "secrets"),
			Pod:        csiclient.Pod{Namespace: "cnpg-system", Name: "pod-" + sa, UID: "uid-" + sa, ServiceAccount: sa},
			Class:      c,
			Tokens:     map[string]csiclient.Token{"vault": {Token: e.api.Token(t, "cnpg-system", sa, 0, "vault"), ExpiresAt: time.Now().Add(time.Hour)}},
		}
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

	t.Run("service account not bound to the role", func(t *testing.T) {
		err := client.Publish(ctx, volume(t, "intruder"))
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("NodePublishVolume: %v, want PermissionDenied", err)
		}
		for _, m := range []string{`role \"cnpg\"`, "objects[0]", "cnpg/data/postgres-credentials"} {
			if !strings.Contains(err.Error(), m) && !strings.Contains(err.Error(), strings.ReplaceAll(m, `\"`, `"`)) {
				t.Errorf("error %q does not name %s", err, m)
			}
		}
	})

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
