package vault

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/secretmount/secretmount/provider"
)

func TestTLSOptions(t *testing.T) {
	f := newFakeVaultWith(t, true)
	f.allow("app", "jwt-a", "apps/app-sa")
	f.kv1["x"] = map[string]any{"v": "over-tls"}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		params []string
		kind   error // nil: the read succeeds
	}{
		{"CA file", []string{"vaultCACertPath", caFile}, nil},
		{"CA folder", []string{"vaultCADirectory", dir}, nil},
		// httptest's certificate names example.com.
		{"CA file and server name", []string{"vaultCACertPath", caFile, "vaultTLSServerName", "example.com"}, nil},
		{"skip verification", []string{"vaultSkipTLSVerify", "true"}, nil},
		{"unknown CA", nil, provider.ErrUnavailable},
		{"wrong server name", []string{"vaultCACertPath", caFile, "vaultTLSServerName", "vault.other"}, provider.ErrUnavailable},
		{"missing client key file", []string{"vaultCACertPath", caFile, "vaultTLSClientCertPath", caFile, "vaultTLSClientKeyPath", filepath.Join(dir, "none.pem")}, provider.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBackend(t, f, newClock(), func(o *Options) { o.MaxRetries = -1 })
			got, err := b.Fetch(context.Background(), plan(t, `- {objectName: x, secretPath: kv1/x, secretKey: v}`, tc.params...), identity("apps", "app-sa", "jwt-a"))
			if tc.kind != nil {
				assertKind(t, err, tc.kind)
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if string(got[0].Bytes) != "over-tls" {
				t.Errorf("got %q", got[0].Bytes)
			}
		})
	}
}
