package vault

import (
	"testing"
	"time"
)

func TestDynamicLeaseReuse(t *testing.T) {
	objects := `
- {objectName: user, secretPath: database/creds/app, secretKey: username}
- {objectName: pass, secretPath: database/creds/app, secretKey: password}
`
	tests := []struct {
		name string
		// after ten polls within the fraction, the clock moves by advance and the
		// fake Vault is set up by prepare; then one more poll.
		advance    time.Duration
		prepare    func(*fakeVault)
		wantLeases int
		wantUser   string
	}{
		{"within the renew fraction", 30 * time.Minute, nil, 1, "user-1"},
		{"renewed past the fraction", 41 * time.Minute, nil, 1, "user-1"},
		{"renewal refused", 41 * time.Minute, func(f *fakeVault) { f.refuse = true }, 2, "user-2"},
		{"max TTL near", 41 * time.Minute, func(f *fakeVault) { f.leaseMax = 60 }, 2, "user-2"},
		{"expired", 2 * time.Hour, nil, 2, "user-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVault(t)
			f.allow("app", "jwt-a", "apps/app-sa")
			c := newClock()
			b := newTestBackend(t, f, c)
			p := plan(t, objects)
			id := identity("apps", "app-sa", "jwt-a")
			first := mustFetch(t, b, p, id)
			for range 10 {
				c.advance(time.Minute)
				got := mustFetch(t, b, p, id)
				if string(got[0].Bytes) != string(first[0].Bytes) || got[1].Version != first[1].Version {
					t.Fatalf("credentials changed within the lease")
				}
			}
			if n := f.count(func(f *fakeVault) int { return len(f.leases) }); n != 1 {
				t.Fatalf("leases after ten polls: %d, want 1", n)
			}
			if string(first[0].Bytes) != "user-1" || string(first[1].Bytes) != "pass-1" {
				t.Fatalf("username and password from different reads: %q %q", first[0].Bytes, first[1].Bytes)
			}
			c.advance(tc.advance)
			if tc.prepare != nil {
				f.mu.Lock()
				tc.prepare(f)
				f.mu.Unlock()
			}
			got := mustFetch(t, b, p, id)
			if n := f.count(func(f *fakeVault) int { return len(f.leases) }); n != tc.wantLeases {
				t.Errorf("leases: %d, want %d", n, tc.wantLeases)
			}
			if string(got[0].Bytes) != tc.wantUser {
				t.Errorf("user %q, want %q", got[0].Bytes, tc.wantUser)
			}
		})
	}
}

func TestIssuedCertificateReusedUntilNearExpiry(t *testing.T) {
	f := newFakeVault(t)
	f.allow("app", "jwt-a", "apps/app-sa")
	c := newClock()
	b := newTestBackend(t, f, c)
	p := plan(t, `
- objectName: cert
  secretPath: pki/issue/web
  secretKey: certificate
  method: PUT
  secretArgs: {common_name: web.example.com}
`)
	id := identity("apps", "app-sa", "jwt-a")
	for range 10 {
		if got := mustFetch(t, b, p, id); string(got[0].Bytes) != "cert-1" {
			t.Fatalf("got %q before the renew point, want cert-1", got[0].Bytes)
		}
		c.advance(3 * time.Minute)
	}
	c.advance(15 * time.Minute)
	if got := mustFetch(t, b, p, id); string(got[0].Bytes) != "cert-2" {
		t.Fatalf("got %q past the renew point, want a new certificate", got[0].Bytes)
	}
	if n := f.count(func(f *fakeVault) int { return f.issued }); n != 2 {
		t.Errorf("certificates issued: %d, want 2", n)
	}
}
