//go:build integration

package integration

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/harness"
)

// TestVaultBackend runs the Vault backend against a real Vault (OpenBao) whose
// kubernetes auth validates real ServiceAccount tokens against a real kube-apiserver.
// The components are started once and shared by the subtests.
func TestVaultBackend(t *testing.T) {
	e := startVaultEnv(t)

	e.setupApps(t)
	e.api.CreateServiceAccount(t, "cnpg-system", "intruder", nil)

	keys := &vault.SecretKeySource{Client: e.api.Client, Namespace: "cnpg-system", Name: "secretmount-vault-versions"}
	newBackend := func(t *testing.T, addr string, window int) *vault.Backend {
		t.Helper()
		opts := vault.Options{DefaultAddress: addr, Keys: keys}
		if window < 0 {
			opts.CoalesceWindow = -1
		}
		b, err := vault.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("guide setup mounted as files", func(t *testing.T) {
		_, p := fixturePlan(t, e.vault.Addr)
		files := fetch(t, newBackend(t, "", 0), p, e.identity(t, "cnpg-system", "cnpg-sa"))
		want := map[string]string{
			"db-username": "postgres", "db-password": "your-secure-password",
			"s3-access-key": "your-access-key", "s3-secret-key": "your-secret-key",
		}
		if len(files) != len(want) {
			t.Errorf("files: %v", keysOf(files))
		}
		for name, w := range want {
			if files[name] != w {
				t.Errorf("%s: got %q, want %q", name, files[name], w)
			}
		}
	})

	t.Run("kv2 path without its data segment", func(t *testing.T) {
		p := vaultPlan(t, "cnpg-system", map[string]string{"roleName": "cnpg", "objects": `
- {objectName: user, secretPath: cnpg/postgres-credentials, secretKey: username}
- {objectName: all, secretPath: cnpg/s3-credentials}`})
		files := fetch(t, newBackend(t, e.vault.Addr, 0), p, e.identity(t, "cnpg-system", "cnpg-sa"))
		if files["user"] != "postgres" || files["all"] != `{"access_key":"your-access-key","secret_key":"your-secret-key"}` {
			t.Errorf("files: %q", files)
		}
	})

	t.Run("kv1, version, nested key, encodings", func(t *testing.T) {
		p := vaultPlan(t, "apps", map[string]string{"roleName": "apps", "objects": `
- {objectName: kv1-token, secretPath: kv1/plain, secretKey: token}
- {objectName: b64, secretPath: kv1/plain, secretKey: b64, encoding: base64}
- {objectName: hex, secretPath: kv1/plain, secretKey: hex, encoding: hex}
- {objectName: first, secretPath: "cnpg/data/versioned?version=1", secretKey: password}
- {objectName: latest, secretPath: cnpg/versioned, secretKey: password}
- objectName: nested
  secretPath: cnpg/nested
  jmesPath:
    - {path: db.owner.user, objectAlias: owner-user}
    - {path: db.owner.password, objectAlias: owner-password}`})
		b := newBackend(t, e.vault.Addr, 0)
		id := e.identity(t, "apps", "app-sa")
		files := fetch(t, b, p, id)
		want := map[string]string{
			"kv1-token": "kv1-token", "b64": "hello world", "hex": "hello", "first": "first", "latest": "second",
			"owner-user": "app", "owner-password": "n3sted",
		}
		for name, w := range want {
			if files[name] != w {
				t.Errorf("%s: got %q, want %q", name, files[name], w)
			}
		}
		contents, err := b.Fetch(context.Background(), p, id)
		if err != nil {
			t.Fatal(err)
		}
		if contents[3].Version != "1" || contents[4].Version != "2" {
			t.Errorf("KV v2 versions: %q, %q; want 1, 2", contents[3].Version, contents[4].Version)
		}
		// A restarted driver (new backend, key from the same Secret) keeps the versions.
		again, err := newBackend(t, e.vault.Addr, 0).Fetch(context.Background(), p, id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(contents[0].Version, "hmac-sha256:") || contents[0].Version != again[0].Version {
			t.Errorf("KV v1 version %q, after restart %q: want one stable digest", contents[0].Version, again[0].Version)
		}
	})

	t.Run("a revoked Vault token is dropped and the login retried", func(t *testing.T) {
		proxy := harness.NewCountingProxy(t, e.vault.Addr, harness.MethodPath)
		_, p := fixturePlan(t, proxy.URL)
		b := newBackend(t, "", -1)
		id := e.identity(t, "cnpg-system", "cnpg-sa")
		fetch(t, b, p, id)
		fetch(t, b, p, id)
		if n := proxy.Count("POST /v1/auth/kubernetes/login"); n != 1 {
			t.Fatalf("logins for two fetches: %d, want 1 (token cached)", n)
		}
		// Revoke every token the kubernetes auth mount has issued.
		e.write(t, "sys/leases/revoke-prefix/auth/kubernetes/login", nil)
		if files := fetch(t, b, p, id); files["db-password"] != "your-secure-password" {
			t.Fatalf("db-password after the token was revoked: %q", files["db-password"])
		}
		if n := proxy.Count("POST /v1/auth/kubernetes/login"); n != 2 {
			t.Errorf("logins after the token was revoked: %d, want 2", n)
		}
	})

	t.Run("refused identities", func(t *testing.T) {
		_, p := fixturePlan(t, e.vault.Addr)
		tests := []struct {
			name, ns, sa string
		}{
			{"service account not bound to the role", "cnpg-system", "intruder"},
			{"bound name in another namespace", "apps", "cnpg-sa"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := newBackend(t, "", 0).Fetch(context.Background(), p, e.identity(t, tc.ns, tc.sa))
				if !errors.Is(err, provider.ErrPermissionDenied) {
					t.Fatalf("error %v: want permission denied", err)
				}
				for _, m := range []string{`role "cnpg"`, "objects[0]", "cnpg/data/postgres-credentials", tc.ns + "/" + tc.sa} {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not name %q", err, m)
					}
				}
				if strings.Contains(err.Error(), "your-secure-password") {
					t.Errorf("error reveals a value")
				}
			})
		}
	})

	t.Run("50 concurrent publishes: one login, one read per secret", func(t *testing.T) {
		proxy := harness.NewCountingProxy(t, e.vault.Addr, harness.MethodPath)
		_, p := fixturePlan(t, proxy.URL)
		b := newBackend(t, "", 0)
		id := e.identity(t, "cnpg-system", "cnpg-sa")
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := b.Fetch(context.Background(), p, id)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Fetch: %v", err)
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
}

// setupApps adds more of Vault than the guide uses: KV v1, a versioned and a nested KV v2
// secret, encoded values; readable by ServiceAccount apps/app-sa through role "apps".
// It also makes apps/cnpg-sa, a ServiceAccount with the guide's name in another namespace.
func (e *vaultEnv) setupApps(t *testing.T) {
	t.Helper()
	e.write(t, "sys/mounts/kv1", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}})
	e.write(t, "kv1/plain", map[string]any{"token": "kv1-token", "b64": "aGVsbG8gd29ybGQ=", "hex": "68656c6c6f"})
	e.write(t, "cnpg/data/versioned", map[string]any{"data": map[string]any{"password": "first"}})
	e.write(t, "cnpg/data/versioned", map[string]any{"data": map[string]any{"password": "second"}})
	e.write(t, "cnpg/data/nested", map[string]any{"data": map[string]any{"db": map[string]any{"owner": map[string]any{"user": "app", "password": "n3sted"}}}})
	e.write(t, "sys/policies/acl/apps", map[string]any{"policy": `
path "kv1/*" { capabilities = ["read"] }
path "cnpg/data/versioned" { capabilities = ["read"] }
path "cnpg/data/nested" { capabilities = ["read"] }`})
	e.write(t, "auth/kubernetes/role/apps", map[string]any{
		"bound_service_account_names": []string{"app-sa"}, "bound_service_account_namespaces": []string{"apps"},
		"policies": []string{"apps"}, "ttl": "1h",
	})
	e.api.CreateNamespace(t, "apps")
	e.api.CreateServiceAccount(t, "apps", "app-sa", nil)
	e.api.CreateServiceAccount(t, "apps", "cnpg-sa", nil)
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
