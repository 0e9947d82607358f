package app

import (
	"strings"
	"testing"

	"github.com/secretmount/secretmount/provider"
)

func TestVaultFlagsOnFetchingCommands(t *testing.T) {
	root := NewCommand()
	for _, name := range []string{"driver", "sync", "provider"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, flag := range []string{"vault-address", "vault-renew-fraction", "vault-version-key-secret"} {
			if cmd.Flags().Lookup(flag) == nil {
				t.Errorf("%s has no --%s", name, flag)
			}
		}
	}
}

func TestVaultRegistration(t *testing.T) {
	tests := []struct {
		name    string
		opts    vaultOptions
		wantErr string
	}{
		{"defaults", vaultOptions{renewFraction: 2.0 / 3, keySecret: "kube-system/key"}, ""},
		{"key secret without namespace", vaultOptions{renewFraction: 0.5, keySecret: "key"}, "--vault-version-key-secret"},
		{"renew fraction out of range", vaultOptions{renewFraction: 1.5, keySecret: "ns/key"}, "--vault-renew-fraction"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := provider.NewRegistry()
			err := tc.opts.register(reg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.Get("vault"); err != nil {
				t.Errorf("vault is not registered: %v", err)
			}
		})
	}
}
