//go:build integration

package interop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/harness"
)

// TestUpstreamDriverWithAWSBackend mounts the guide's class through the upstream driver
// and our provider server with the real AWS backend against moto (IRSA web identity,
// Secrets Manager), and compares with our driver.
func TestUpstreamDriverWithAWSBackend(t *testing.T) {
	requireRoot(t)
	api := cluster(t)
	moto := harness.SharedMoto(t)
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "cnpg", map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/cnpg-" + ns})

	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	for name, value := range map[string]string{
		"prod/cnpg/postgres-credentials": `{"username":"postgres","password":"p\u00e4ss w0rd\n"}`,
		"prod/cnpg/s3-credentials":       `{"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"wJalr/K7MDENG+bPxRfiCY"}`,
	} {
		harness.RecordSecretValue(t, value)
		_, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: sdkaws.String(name), SecretString: sdkaws.String(value)})
		if err != nil {
			t.Logf("create secret %s: %v (kept, as another test of this binary may have made it)", name, err)
			_, err = sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: sdkaws.String(name), SecretString: sdkaws.String(value)})
			if err != nil {
				t.Fatalf("put secret %s: %v", name, err)
			}
		}
	}
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	storeClass(t, api, ns, spc)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	roles, err := aws.NewServiceAccountRoles(api.Client, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := roles.Start(ctx); err != nil {
		t.Fatal(err)
	}
	backend, err := aws.New(ctx, aws.Options{DefaultRegion: harness.MotoRegion, Endpoint: moto.Endpoint, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", backend)

	files := interop(t, ns, "cnpg", spc.Name, "aws", reg, "sts.amazonaws.com")
	for name, want := range map[string]string{"db-username": "postgres", "db-password": "p\u00e4ss w0rd\n", "s3-access-key": "AKIAEXAMPLE"} {
		if string(files[name].Bytes) != want {
			t.Errorf("%s does not hold the value stored in moto", name)
		}
	}
}

// TestUpstreamDriverWithVaultBackend mounts the guide's Vault class through the upstream
// driver and our provider server with the real Vault backend (OpenBao, kubernetes auth
// reviewing real tokens), set up by the guide's own script, and compares with our driver.
func TestUpstreamDriverWithVaultBackend(t *testing.T) {
	requireRoot(t)
	api := cluster(t)
	v := guideVault(t, api)
	const ns = "cnpg-system"
	spc := harness.FixtureClass(t, "cnpg-vault-secretproviderclass.yaml")
	spc.Spec.Parameters["vaultAddress"] = v.Addr
	storeClass(t, api, ns, spc)

	backend, err := vault.New(vault.Options{Keys: &vault.SecretKeySource{Client: api.Client, Namespace: ns, Name: "secretmount-vault-versions"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("vault", backend)

	files := interop(t, ns, "cnpg-sa", spc.Name, "vault", reg, "vault")
	for name, want := range map[string]string{
		"db-username": "postgres", "db-password": "your-secure-password",
		"s3-access-key": "your-access-key", "s3-secret-key": "your-secret-key",
	} {
		if string(files[name].Bytes) != want {
			t.Errorf("%s does not hold the value the guide's script wrote", name)
		}
	}
}

// guide records whether the shared Vault and API server are set up as the guide says;
// its script can run only once per Vault.
var guide struct {
	sync.Mutex
	done bool
}

// guideVault sets up, once per test binary, the shared Vault with the guide's own
// script, kubernetes auth against api, and ServiceAccount cnpg-system/cnpg-sa that the
// guide's role binds.
func guideVault(t *testing.T, api *harness.APIServer) *harness.Vault {
	t.Helper()
	guide.Lock()
	defer guide.Unlock()
	v := harness.SharedVault(t)
	if guide.done {
		return v
	}
	v.ConfigureKubernetesAuth(t, api, "kubernetes")
	script := filepath.Join(harness.FixturesDir(t), "cnpg-vault-setup.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.RootToken)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	// The values the guide's script seeds, for the leak scan.
	harness.RecordSecretValue(t, "your-secure-password", "your-access-key", "your-secret-key")
	api.CreateNamespace(t, "cnpg-system")
	api.CreateServiceAccount(t, "cnpg-system", "cnpg-sa", nil)
	guide.done = true
	return v
}
