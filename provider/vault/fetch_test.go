package vault

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secretmount/secretmount/provider"
)

func TestFetchKV(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.kv2["db"] = []map[string]any{
		{"username": "old", "password": "old-pw"},
		{"username": "postgres", "password": "s3cret", "nested": map[string]any{"inner": "deep"}, "port": json.Number("5432")},
	}
	f.kv1["plain"] = map[string]any{"token": "t0ken", "b64": "aGVsbG8=", "hex": "68656c6c6f"}

	tests := []struct {
		name, objects string
		want          []string
		wantVersion   []string
	}{
		{"kv2 data path", `- {objectName: u, secretPath: kv2/data/db, secretKey: username}`, []string{"postgres"}, []string{"2"}},
		{"kv2 path without data segment", `- {objectName: u, secretPath: kv2/db, secretKey: password}`, []string{"s3cret"}, []string{"2"}},
		{"kv2 pinned version", `- {objectName: u, secretPath: "kv2/db?version=1", secretKey: password}`, []string{"old-pw"}, []string{"1"}},
		{"kv2 non-string value as JSON", `- {objectName: u, secretPath: kv2/db, secretKey: port}`, []string{"5432"}, []string{"2"}},
		{"kv2 whole data as JSON", `- {objectName: u, secretPath: kv2/db}`,
			[]string{`{"nested":{"inner":"deep"},"password":"s3cret","port":5432,"username":"postgres"}`}, []string{"2"}},
		{"kv1", `- {objectName: u, secretPath: kv1/plain, secretKey: token}`, []string{"t0ken"}, nil},
		{"base64", `- {objectName: u, secretPath: kv1/plain, secretKey: b64, encoding: base64}`, []string{"hello"}, nil},
		{"hex", `- {objectName: u, secretPath: kv1/plain, secretKey: hex, encoding: hex}`, []string{"hello"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBackend(t, f, newClock())
			got := mustFetch(t, b, plan(t, tc.objects), identity("apps", "app-sa", "jwt-a"))
			for i, w := range tc.want {
				if string(got[i].Bytes) != w {
					t.Errorf("object %d: got %q, want %q", i, got[i].Bytes, w)
				}
				if tc.wantVersion != nil && got[i].Version != tc.wantVersion[i] {
					t.Errorf("object %d: version %q, want %q", i, got[i].Version, tc.wantVersion[i])
				}
				if tc.wantVersion == nil && !strings.HasPrefix(got[i].Version, "hmac-sha256:") {
					t.Errorf("object %d: version %q, want an HMAC digest", i, got[i].Version)
				}
			}
		})
	}
}

func TestFetchNestedKeyThroughRender(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.kv2["db"] = []map[string]any{{"creds": map[string]any{"user": "postgres", "pw": "s3cret"}}}
	p := plan(t, `
- objectName: db
  secretPath: kv2/db
  jmesPath:
    - {path: creds.user, objectAlias: user}
    - {path: creds.pw, objectAlias: pw}
`)
	b := newTestBackend(t, f, newClock())
	files, err := p.Render(mustFetch(t, b, p, identity("apps", "app-sa", "jwt-a")))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	got := map[string]string{}
	for _, fl := range files {
		got[fl.Path] = string(fl.Bytes)
	}
	if got["user"] != "postgres" || got["pw"] != "s3cret" || got["db"] != `{"creds":{"pw":"s3cret","user":"postgres"}}` {
		t.Fatalf("files: %v", got)
	}
}

func TestDigestVersions(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.kv1["a"] = map[string]any{"v": "same-value"}
	f.kv1["b"] = map[string]any{"v": "same-value"}
	p := plan(t, `
- {objectName: a, secretPath: kv1/a, secretKey: v}
- {objectName: b, secretPath: kv1/b, secretKey: v}
`)
	id := identity("apps", "app-sa", "jwt-a")
	first := mustFetch(t, newTestBackend(t, f, newClock()), p, id)
	// A new backend with the same key stands for a restart.
	again := mustFetch(t, newTestBackend(t, f, newClock()), p, id)
	otherKey := mustFetch(t, newTestBackend(t, f, newClock(), func(o *Options) { o.Keys = StaticKey(strings.Repeat("x", 32)) }), p, id)
	if first[0].Version != again[0].Version {
		t.Errorf("version changed across restarts: %q then %q", first[0].Version, again[0].Version)
	}
	if first[0].Version == first[1].Version {
		t.Errorf("two objects with equal values share version %q", first[0].Version)
	}
	if first[0].Version == otherKey[0].Version {
		t.Errorf("version does not depend on the key")
	}
	if strings.Contains(first[0].Version, "same-value") {
		t.Errorf("version %q reveals the value", first[0].Version)
	}
	f.kv1["a"] = map[string]any{"v": "changed"}
	changed := mustFetch(t, newTestBackend(t, f, newClock()), p, id)
	if changed[0].Version == first[0].Version {
		t.Errorf("version did not change with the content")
	}
}

func TestFetchErrors(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.allow("other", "jwt-b", "apps/other-sa")
	f.kv2["db"] = []map[string]any{{"username": "postgres"}}
	f.kv1["bad"] = map[string]any{"b64": "not base64 !!", "hex": "zz-top-secret"}

	tests := []struct {
		name, objects string
		id            provider.Identity
		kind          error
		mentions      []string
		params        []string
	}{
		{"unbound service account", `- {objectName: u, secretPath: kv2/db, secretKey: username}`, identity("apps", "other-sa", "jwt-b"),
			provider.ErrPermissionDenied, []string{`role "app"`, "objects[0]", "kv2/db", "service account name not authorized"}, nil},
		{"unknown role", `- {objectName: u, secretPath: kv2/db, secretKey: username}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrPermissionDenied, []string{`role "nope"`}, []string{"roleName", "nope"}},
		{"no token for the audience", `- {objectName: u, secretPath: kv2/db}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrPermissionDenied, []string{`audience "other"`}, []string{"audience", "other"}},
		{"missing secret", `- {objectName: u, secretPath: kv2/none, secretKey: username}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrNotFound, []string{"objects[0]", "kv2/none"}, nil},
		{"missing key", `- {objectName: u, secretPath: kv2/db, secretKey: password}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrNotFound, []string{`secretKey "password"`}, nil},
		{"missing version", `- {objectName: u, secretPath: "kv2/db?version=7", secretKey: username}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrNotFound, []string{"version=7"}, nil},
		{"version on kv1", `- {objectName: u, secretPath: "kv1/bad?version=1", secretKey: b64}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrInvalid, []string{"KV v2"}, nil},
		{"bad base64", `- {objectName: u, secretPath: kv1/bad, secretKey: b64, encoding: base64}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrInvalid, []string{"base64", `"u"`}, nil},
		{"bad hex", `- {objectName: u, secretPath: kv1/bad, secretKey: hex, encoding: hex}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrInvalid, []string{"hex"}, nil},
		{"read answered without data", `- {objectName: u, secretPath: empty/db}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrUnavailable, []string{"objects[0]", "empty/db", "without data"}, nil},
		{"read answered with no content", `- {objectName: u, secretPath: nocontent/db}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrUnavailable, []string{"nocontent/db", "without data"}, nil},
		{"write that issues nothing", `- {objectName: u, secretPath: nocontent/issue, method: PUT}`, identity("apps", "app-sa", "jwt-a"),
			provider.ErrInvalid, []string{"PUT nocontent/issue", "issues no secret"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBackend(t, f, newClock())
			_, err := b.Fetch(context.Background(), plan(t, tc.objects, tc.params...), tc.id)
			assertKind(t, err, tc.kind, tc.mentions...)
			for _, v := range []string{"postgres", "not base64", "top-secret", "jwt-"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q reveals %q", err, v)
				}
			}
		})
	}
}

func TestFetchUnavailableAfterBoundedRetries(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.failStatus = 503
	b := newTestBackend(t, f, newClock(), func(o *Options) { o.MaxRetries = 2 })
	_, err := b.Fetch(context.Background(), plan(t, `- {objectName: u, secretPath: kv1/x}`), identity("apps", "app-sa", "jwt-a"))
	assertKind(t, err, provider.ErrUnavailable, "503", "objects[0]")
	if n := f.count(func(f *fakeVault) int { return f.reads["kv1/x"] }); n != 3 {
		t.Errorf("reads: %d, want 1 + 2 retries", n)
	}

	b = newTestBackend(t, f, newClock(), func(o *Options) { o.DefaultAddress = "http://127.0.0.1:1"; o.MaxRetries = -1 })
	_, err = b.Fetch(context.Background(), plan(t, `- {objectName: u, secretPath: kv1/x}`), identity("apps", "app-sa", "jwt-a"))
	assertKind(t, err, provider.ErrUnavailable, `role "app"`)
}
