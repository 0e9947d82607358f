package vault

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/secretmount/secretmount/provider"
)

func TestTokenCachedAndReloggedWhenRejected(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.kv1["x"] = map[string]any{"v": "1"}
	// The environment must not leak a token into requests.
	t.Setenv("VAULT_TOKEN", "env-root-token")
	t.Setenv("VAULT_NAMESPACE", "env-namespace")
	c := newClock()
	b := newTestBackend(t, f, c)
	p := plan(t, `- {objectName: x, secretPath: kv1/x, secretKey: v}`)
	id := identity("apps", "app-sa", "jwt-a")

	mustFetch(t, b, p, id)
	mustFetch(t, b, p, id)
	if n := f.count(func(f *fakeVault) int { return f.logins }); n != 1 {
		t.Fatalf("logins after two fetches: %d, want 1", n)
	}
	f.revokeTokens()
	mustFetch(t, b, p, id)
	if n := f.count(func(f *fakeVault) int { return f.logins }); n != 2 {
		t.Fatalf("logins after the token was revoked: %d, want 2", n)
	}
	// Past the renew fraction of the token's TTL the token is renewed, not replaced.
	c.advance(50 * time.Minute)
	mustFetch(t, b, p, id)
	if n := f.count(func(f *fakeVault) int { return f.logins }); n != 2 {
		t.Errorf("logins after renewal: %d, want 2", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	renewed := false
	for _, r := range f.requests {
		if r.URL.Path == "/v1/auth/token/renew-self" {
			renewed = true
		}
		if r.Header.Get("X-Vault-Token") == "env-root-token" || r.Header.Get("X-Vault-Namespace") != "" {
			t.Errorf("request %s carries settings from the environment", r.URL.Path)
		}
	}
	if !renewed {
		t.Errorf("the token was not renewed")
	}
}

func TestIdentitiesShareNothing(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.allow("app", "jwt-b", "apps/app-sb")
	f.kv1["x"] = map[string]any{"v": "1"}
	b := newTestBackend(t, f, newClock(), func(o *Options) { o.CoalesceWindow = time.Minute })
	p := plan(t, `- {objectName: x, secretPath: kv1/x, secretKey: v}`)
	mustFetch(t, b, p, identity("apps", "app-sa", "jwt-a"))
	mustFetch(t, b, p, identity("apps", "app-sb", "jwt-b"))
	if n := f.count(func(f *fakeVault) int { return f.logins }); n != 2 {
		t.Errorf("logins for two ServiceAccounts: %d, want 2", n)
	}
	if n := f.count(func(f *fakeVault) int { return f.reads["kv1/x"] }); n != 2 {
		t.Errorf("reads for two ServiceAccounts: %d, want 2 (no shared results)", n)
	}
}

func TestConcurrentPublishesCoalesce(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.kv2["db"] = []map[string]any{{"username": "postgres", "password": "pw"}}
	f.kv1["s3"] = map[string]any{"key": "k"}
	b := newTestBackend(t, f, newClock(), func(o *Options) { o.CoalesceWindow = 0 })
	p := plan(t, `
- {objectName: user, secretPath: kv2/db, secretKey: username}
- {objectName: pass, secretPath: kv2/db, secretKey: password}
- {objectName: s3, secretPath: kv1/s3, secretKey: key}
`)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := b.Fetch(context.Background(), p, identity("apps", "app-sa", "jwt-a"))
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
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logins != 1 {
		t.Errorf("logins: %d, want 1", f.logins)
	}
	if f.reads["kv2/data/db"] != 1 || f.reads["kv1/s3"] != 1 {
		t.Errorf("reads: %v, want one per secret", f.reads)
	}
}

func TestRequestSettings(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	b := newTestBackend(t, f, newClock())
	p := plan(t, `
- objectName: cert
  secretPath: database/creds/issue
  method: POST
  secretArgs: {common_name: app.example.com, ttl: 1h}
`, "vaultNamespace", "team-a", "vaultAuthMountPath", "k8s-east")
	mustFetch(t, b, p, identity("apps", "app-sa", "jwt-a"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := f.bodies["database/creds/issue"]; got["common_name"] != "app.example.com" || got["ttl"] != "1h" {
		t.Errorf("request body: %v", got)
	}
	sawLogin := false
	for _, r := range f.requests {
		if r.Header.Get("X-Vault-Namespace") != "team-a" {
			t.Errorf("%s %s: namespace header %q", r.Method, r.URL.Path, r.Header.Get("X-Vault-Namespace"))
		}
		if r.URL.Path == "/v1/auth/k8s-east/login" {
			sawLogin = true
		}
		if r.URL.Path == "/v1/database/creds/issue" && r.Method != "POST" {
			t.Errorf("method %s, want POST", r.Method)
		}
	}
	if !sawLogin {
		t.Errorf("no login at auth/k8s-east")
	}
}

// tokenSource mints tokens for identities that carry none (sync without a pod).
type tokenSource map[string]string

func (s tokenSource) Token(_ context.Context, id provider.Identity, audience string) (provider.Token, error) {
	return provider.Token{Token: s[id.Key()+"@"+audience]}, nil
}

func TestTokenSourceWhenIdentityHasNoToken(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-minted", "apps/app-sa")
	f.kv1["x"] = map[string]any{"v": "1"}
	b := newTestBackend(t, f, newClock(), func(o *Options) { o.Tokens = tokenSource{"apps/app-sa@vault": "jwt-minted"} })
	got := mustFetch(t, b, plan(t, `- {objectName: x, secretPath: kv1/x, secretKey: v}`), provider.Identity{Namespace: "apps", ServiceAccount: "app-sa"})
	if string(got[0].Bytes) != "1" {
		t.Errorf("got %q", got[0].Bytes)
	}
}
