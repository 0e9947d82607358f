//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/harness"
)

// vaultEnv is a real kube-apiserver and a real Vault (OpenBao) whose kubernetes auth
// reviews the API server's ServiceAccount tokens, set up as the CloudNativePG guide
// describes with its own script.
type vaultEnv struct {
	api   *harness.APIServer
	vault *harness.Vault
	root  *vaultapi.Client
}

func startVaultEnv(t *testing.T) *vaultEnv {
	t.Helper()
	api := harness.StartAPIServer(t)
	v := harness.StartVault(t)
	v.ConfigureKubernetesAuth(t, api, "kubernetes")
	e := &vaultEnv{api: api, vault: v, root: v.Client}

	script := filepath.Join(harness.FixturesDir(t), "cnpg-vault-setup.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.RootToken)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	// The values the guide's script seeds.
	harness.RecordSecretValue(t, "your-secure-password", "your-access-key", "your-secret-key")
	api.CreateNamespace(t, "cnpg-system")
	api.CreateServiceAccount(t, "cnpg-system", "cnpg-sa", nil)
	return e
}

// write is a root-token write to Vault.
func (e *vaultEnv) write(t *testing.T, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	if strings.Contains(path, "/data/") || strings.HasPrefix(path, "kv1/") {
		recordLeaves(t, data)
	}
	s, err := e.root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

// recordLeaves registers the string values of a KV write for the leak scan.
func recordLeaves(t *testing.T, v any) {
	switch v := v.(type) {
	case string:
		harness.RecordSecretValue(t, v)
	case map[string]any:
		for _, e := range v {
			recordLeaves(t, e)
		}
	}
}

// identity is what kubelet hands the driver for a pod of ServiceAccount ns/sa: a real
// projected token for audience "vault".
func (e *vaultEnv) identity(t *testing.T, ns, sa string) provider.Identity {
	t.Helper()
	return provider.Identity{
		Namespace: ns, ServiceAccount: sa, PodName: "pod-" + sa, PodUID: "uid-" + sa,
		Tokens: map[string]provider.Token{"vault": {Token: e.api.Token(t, ns, sa, 0, "vault"), ExpiresAt: time.Now().Add(time.Hour)}},
	}
}

// vaultPlan plans a SecretProviderClass of the Vault dialect in namespace ns.
func vaultPlan(t *testing.T, ns string, params map[string]string) *providerclass.Plan {
	t.Helper()
	spc := &secretsstorev1.SecretProviderClass{}
	spc.Namespace, spc.Name = ns, "vault-"+strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	spc.Spec.Provider = "vault"
	spc.Spec.Parameters = params
	p, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: ns, PodName: "pod"})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	return p
}

// fixturePlan plans the guide's SecretProviderClass file as it is, pointed at the test's
// Vault (the file names the in-cluster address).
func fixturePlan(t *testing.T, addr string) (*secretsstorev1.SecretProviderClass, *providerclass.Plan) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), "cnpg-vault-secretproviderclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spc := &secretsstorev1.SecretProviderClass{}
	if err := yaml.UnmarshalStrict(data, spc); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	spc.Spec.Parameters["vaultAddress"] = addr
	p, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: spc.Namespace, PodName: "pg-1", ServiceAccount: "cnpg-sa"})
	if err != nil {
		t.Fatalf("NewPlan(fixture): %v", err)
	}
	return spc, p
}

func fetch(t *testing.T, b provider.Provider, p *providerclass.Plan, id provider.Identity) map[string]string {
	t.Helper()
	contents, err := b.Fetch(context.Background(), p, id)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	files, err := p.Render(contents)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[f.Path] = string(f.Bytes)
	}
	return out
}
