//go:build integration

package smoke

import (
	"context"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretmount/secretmount/test/harness"
)

func TestVaultKVv2(t *testing.T) {
	v := harness.SharedVault(t)
	ctx := context.Background()
	kv := v.Client.KVv2("secret")
	path := "smoke/" + t.Name()

	if _, err := kv.Put(ctx, path, map[string]any{"password": "one"}); err != nil {
		t.Fatalf("put version 1: %v", err)
	}
	if _, err := kv.Put(ctx, path, map[string]any{"password": "two"}); err != nil {
		t.Fatalf("put version 2: %v", err)
	}
	tests := []struct {
		name    string
		version int // 0: latest
		want    string
	}{
		{name: "latest", want: "two"},
		{name: "version 1", version: 1, want: "one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *vaultapi.KVSecret
			var err error
			if tt.version == 0 {
				s, err = kv.Get(ctx, path)
			} else {
				s, err = kv.GetVersion(ctx, path, tt.version)
			}
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got := s.Data["password"]; got != tt.want {
				t.Errorf("password = %v, want %s", got, tt.want)
			}
		})
	}

	// How a provider tells KV v1 from v2.
	mount, err := v.Client.Logical().Read("sys/internal/ui/mounts/secret")
	if err != nil {
		t.Fatalf("read mount info: %v", err)
	}
	opts, _ := mount.Data["options"].(map[string]any)
	if opts["version"] != "2" {
		t.Errorf("secret/ options.version = %v, want 2", opts["version"])
	}
}

func TestVaultKubernetesAuthWithRealTokenReview(t *testing.T) {
	api := harness.SharedAPIServer(t)
	v := harness.SharedVault(t)
	v.ConfigureKubernetesAuth(t, api, "kubernetes")
	// A second call, as another test sharing both servers makes, must leave it working.
	v.ConfigureKubernetesAuth(t, api, "kubernetes")

	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "app", nil)
	api.CreateServiceAccount(t, ns, "stranger", nil)
	prefix := "smoke/" + ns
	if _, err := v.Client.KVv2("secret").Put(context.Background(), prefix+"/db", map[string]any{"password": "s3cr3t"}); err != nil {
		t.Fatalf("put: %v", err)
	}
	v.WritePolicy(t, ns, `path "secret/data/`+prefix+`/*" { capabilities = ["read"] }`)
	v.WriteKubernetesRole(t, "kubernetes", harness.KubernetesRole{
		Name: ns, Namespaces: []string{ns}, ServiceAccounts: []string{"app"}, Policies: []string{ns}, Audience: "vault",
	})

	// Only the API server can tell these from good tokens: Vault must really ask it.
	api.CreateServiceAccount(t, ns, "deleted", nil)
	deletedToken := api.Token(t, ns, "deleted", 0, "vault")
	if err := api.Client.CoreV1().ServiceAccounts(ns).Delete(context.Background(), "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete ServiceAccount: %v", err)
	}
	v.WriteKubernetesRole(t, "kubernetes", harness.KubernetesRole{
		Name: ns + "-deleted", Namespaces: []string{ns}, ServiceAccounts: []string{"deleted"}, Policies: []string{ns}, Audience: "vault",
	})

	tests := []struct {
		name    string
		role    string
		token   string
		wantErr string // empty: the login succeeds
	}{
		{name: "bound ServiceAccount", token: api.Token(t, ns, "app", 0, "vault")},
		{name: "unbound ServiceAccount", token: api.Token(t, ns, "stranger", 0, "vault"), wantErr: "service account name not authorized"},
		{name: "wrong audience", token: api.Token(t, ns, "app", 0, "not-vault"), wantErr: "invalid audience"},
		{name: "not a token", token: "e30.e30.e30", wantErr: "permission denied"},
		{name: "tampered signature", token: tamper(api.Token(t, ns, "app", 0, "vault")), wantErr: "permission denied"},
		{name: "deleted ServiceAccount", role: ns + "-deleted", token: deletedToken, wantErr: "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := v.NewClient(t)
			c.ClearToken()
			role := tt.role
			if role == "" {
				role = ns
			}
			login, err := c.Logical().Write("auth/kubernetes/login", map[string]any{"role": role, "jwt": tt.token})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("login: err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			c.SetToken(login.Auth.ClientToken)
			s, err := c.KVv2("secret").Get(context.Background(), prefix+"/db")
			if err != nil {
				t.Fatalf("read with the login token: %v", err)
			}
			if s.Data["password"] != "s3cr3t" {
				t.Errorf("password = %v, want s3cr3t", s.Data["password"])
			}
			if _, err := c.KVv2("secret").Get(context.Background(), "smoke/elsewhere"); err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("read outside the policy: err = %v, want permission denied", err)
			}
		})
	}
}
