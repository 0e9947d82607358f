//go:build integration

package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretmount/secretmount/test/harness"
)

// TestRenderAWS renders the guide's class from moto with the caller's own static keys
// (no ServiceAccount, no kubeconfig), in a mounted volume's layout.
func TestRenderAWS(t *testing.T) {
	m := harness.StartMoto(t)
	sm := secretsmanager.NewFromConfig(m.AWSConfig())
	for name, value := range map[string]string{
		"prod/cnpg/postgres-credentials": `{"username":"render-user","password":"render-pw"}`,
		"prod/cnpg/s3-credentials":       `{"accessKeyId":"AKIDRENDER","secretAccessKey":"render-sk"}`,
	} {
		if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: sdkaws.String(name), SecretString: sdkaws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", harness.MotoAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", harness.MotoSecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("KUBECONFIG", "")
	out := filepath.Join(t.TempDir(), "out")
	spc := filepath.Join(fixturesDir(t), "cnpg-aws-secretproviderclass.yaml")
	text, err := runRender(t, "-f", spc, "--out", out, "--aws-endpoint", m.Endpoint, "--aws-region", harness.MotoRegion)
	if err != nil {
		t.Fatalf("render: %v\n%s", err, text)
	}
	want := map[string]string{
		"db-username": "render-user", "db-password": "render-pw",
		"s3-access-key": "AKIDRENDER", "s3-secret-key": "render-sk",
		"prod_cnpg_postgres-credentials": `{"username":"render-user","password":"render-pw"}`,
	}
	checkRendered(t, out, want)
	for _, v := range want {
		if strings.Contains(text, v) {
			t.Errorf("render printed a value: %s", text)
		}
	}

	// A missing secret fails the render and leaves no folder behind.
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if err := os.WriteFile(missing, []byte(`apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: missing, namespace: ns}
spec:
  provider: aws
  parameters:
    objects: |
      - objectName: prod/absent
        objectType: secretsmanager
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "out2")
	if _, err := runRender(t, "-f", missing, "--out", out2, "--aws-endpoint", m.Endpoint, "--aws-region", harness.MotoRegion); err == nil || !strings.Contains(err.Error(), "prod/absent") {
		t.Errorf("render of a missing secret: err = %v, want one naming prod/absent", err)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("a failed render created %s", out2)
	}
}

// TestRenderVault renders the guide's Vault twin with a ServiceAccount login (the token
// comes from TokenRequest through --kubeconfig, and Vault checks it with a real
// TokenReview) and with the caller's own VAULT_TOKEN.
func TestRenderVault(t *testing.T) {
	api := harness.StartAPIServer(t)
	v := harness.StartVault(t)
	v.ConfigureKubernetesAuth(t, api, "kubernetes")
	script := filepath.Join(fixturesDir(t), "cnpg-vault-setup.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.RootToken)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	api.CreateNamespace(t, "cnpg-system")
	api.CreateServiceAccount(t, "cnpg-system", "cnpg-sa", nil)
	api.CreateServiceAccount(t, "cnpg-system", "other-sa", nil)

	// The class names its server by a cluster DNS name; this copy names the local one.
	data, err := os.ReadFile(filepath.Join(fixturesDir(t), "cnpg-vault-secretproviderclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spc := filepath.Join(t.TempDir(), "vault.yaml")
	if err := os.WriteFile(spc, []byte(strings.Replace(string(data), "http://vault.vault-system:8200", v.Addr, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")
	out := filepath.Join(t.TempDir(), "out")
	text, err := runRender(t, "-f", spc, "--out", out, "--service-account", "cnpg-sa", "--kubeconfig", api.Kubeconfig)
	if err != nil {
		t.Fatalf("render: %v\n%s", err, text)
	}
	checkRendered(t, out, map[string]string{
		"db-username": "postgres", "db-password": "your-secure-password",
		"s3-access-key": "your-access-key", "s3-secret-key": "your-secret-key",
	})

	// The caller's own VAULT_TOKEN, without any Kubernetes: the same files.
	t.Setenv("VAULT_TOKEN", v.RootToken)
	out3 := filepath.Join(t.TempDir(), "out3")
	if text, err := runRender(t, "-f", spc, "--out", out3); err != nil {
		t.Fatalf("render with VAULT_TOKEN: %v\n%s", err, text)
	}
	checkRendered(t, out3, map[string]string{"db-password": "your-secure-password", "s3-secret-key": "your-secret-key"})
	// A token Vault does not know is refused, and nothing is written.
	t.Setenv("VAULT_TOKEN", "s.not-a-token")
	out4 := filepath.Join(t.TempDir(), "out4")
	if _, err := runRender(t, "-f", spc, "--out", out4); err == nil {
		t.Error("render with an unknown VAULT_TOKEN succeeded")
	}
	if _, err := os.Stat(out4); !os.IsNotExist(err) {
		t.Errorf("a failed render created %s", out4)
	}
	t.Setenv("VAULT_TOKEN", "")

	// A ServiceAccount the role is not bound to is refused by Vault.
	out2 := filepath.Join(t.TempDir(), "out2")
	if _, err := runRender(t, "-f", spc, "--out", out2, "--service-account", "other-sa", "--kubeconfig", api.Kubeconfig); err == nil {
		t.Error("render as a ServiceAccount outside the role succeeded")
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("a failed render created %s", out2)
	}
}

// checkRendered checks files' contents and modes and the mount layout (..data link).
func checkRendered(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	if _, err := os.Readlink(filepath.Join(dir, "..data")); err != nil {
		t.Errorf("no ..data link in %s: %v", dir, err)
	}
	for name, value := range want {
		p := filepath.Join(dir, name)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if string(got) != value {
			t.Errorf("%s holds %d bytes, not the %d written to the backend", name, len(got), len(value))
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want 0644", name, fi.Mode().Perm())
		}
	}
}
