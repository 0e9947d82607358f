package vault

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFetch measures one Fetch of the guide's four objects (two KV v2 secrets) with
// a cached Vault token: "read" goes to the (fake) server every time, "coalesced" is
// answered from the coalescing window.
func BenchmarkFetch(b *testing.B) {
	for _, bc := range []struct {
		name   string
		window time.Duration
	}{{"read", -1}, {"coalesced", time.Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFakeVault(b)
			f.allow("app", "jwt-a", "apps/app-sa")
			f.kv2["pg"] = []map[string]any{{"username": "postgres", "password": "pw"}}
			f.kv2["s3"] = []map[string]any{{"access_key": "a", "secret_key": "s"}}
			back, err := New(Options{DefaultAddress: f.addr(), Keys: testKey, CoalesceWindow: bc.window})
			if err != nil {
				b.Fatal(err)
			}
			p := plan(b, `
- {objectName: db-username, secretPath: kv2/pg, secretKey: username}
- {objectName: db-password, secretPath: kv2/pg, secretKey: password}
- {objectName: s3-access-key, secretPath: kv2/s3, secretKey: access_key}
- {objectName: s3-secret-key, secretPath: kv2/s3, secretKey: secret_key}`)
			id := identity("apps", "app-sa", "jwt-a")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := back.Fetch(ctx, p, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
