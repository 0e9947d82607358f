//go:build integration

package sync

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/harness"
)

// TestSecretSyncVault runs the guide's Vault twin (KV v2 at cnpg, role cnpg) with the real
// Vault backend: kubernetes auth with a TokenRequest token of cnpg-sa, byte-exact
// Secrets, and a new KV version at the next poll.
func TestSecretSyncVault(t *testing.T) {
	api := harness.SharedAPIServer(t)
	v := harness.SharedVault(t)
	v.ConfigureKubernetesAuth(t, api, "kubernetes")
	script := filepath.Join(harness.FixturesDir(t), "cnpg-vault-setup.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.RootToken)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}

	e := startEnvWith(t, "vault", func(e *env) provider.Provider {
		b, err := vault.New(vault.Options{
			Keys:   &vault.SecretKeySource{Client: e.api.Client, Namespace: e.ns, Name: "secretmount-vault-versions"},
			Tokens: NewTokenRequester(e.api.Client), CoalesceWindow: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, nil)
	// The guide binds role cnpg to cnpg-sa in cnpg-system; this test's namespace is its own.
	v.WriteKubernetesRole(t, "kubernetes", harness.KubernetesRole{
		Name: "cnpg", Namespaces: []string{e.ns}, ServiceAccounts: []string{"cnpg-sa"}, Policies: []string{"cnpg-policy"}, Audience: "vault",
	})
	e.createClass(t, "cnpg-vault-secretproviderclass.yaml", func(spc *secretsstorev1.SecretProviderClass) {
		spc.Spec.Parameters["vaultAddress"] = v.Addr
	})
	useVault := func(ss *v1alpha1.SecretSync) { ss.Spec.SecretProviderClassName = "postgres-vault-secrets" }
	e.createSync(t, "postgres-credentials", "", guideData["postgres-credentials"], useVault)
	e.createSync(t, "s3-credentials", "", []v1alpha1.SecretObjectData{
		{SourcePath: "s3-access-key", TargetKey: "access_key"}, {SourcePath: "s3-secret-key", TargetKey: "secret_key"}}, useVault)
	e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"username": "postgres", "password": "your-secure-password"})
	})
	e.waitSecret(t, "s3-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"access_key": "your-access-key", "secret_key": "your-secret-key"})
	})

	rotated := fmt.Sprintf("vault-%x", rand.Uint64())
	if _, err := v.Client.Logical().Write("cnpg/data/postgres-credentials", map[string]any{
		"data": map[string]any{"username": "postgres", "password": rotated}}); err != nil {
		t.Fatal(err)
	}
	e.tick(t)
	e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { return string(s.Data["password"]) == rotated })
	e.waitCondition(t, "postgres-credentials", v1alpha1.ConditionUpdate, metav1.ConditionTrue, v1alpha1.ReasonValueChangeOrForceUpdateDetected)
	e.assertNoValues(t, "your-secure-password", rotated, "your-access-key", "your-secret-key")
}
