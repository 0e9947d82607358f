//go:build integration

package reliability

import (
	"fmt"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// vaultFaultEnv is a real API server (ServiceAccount tokens, TokenReview) and Vault
// behind a FaultProxy, the Vault backend pointed at the proxy and the driver in this
// process.
type vaultFaultEnv struct {
	api   *harness.APIServer
	vault *harness.Vault
	proxy *harness.FaultProxy
	fd    *faultDriver
	ns    string
	spc   *secretsstorev1.SecretProviderClass
	plan  *providerclass.Plan
}

// vaultValues are the KV v2 data of the two Vault secrets, by generation.
func vaultValues(gen int) (postgres, s3 map[string]any) {
	return map[string]any{"username": "postgres", "password": fmt.Sprintf("vault-fault-pw-%d", gen)},
		map[string]any{"access_key": fmt.Sprintf("vault-ak-%d", gen), "secret_key": fmt.Sprintf("vault-sk-%d", gen)}
}

func startVaultFaultEnv(t *testing.T, seed uint64) *vaultFaultEnv {
	t.Helper()
	harness.RequireRoot(t)
	e := &vaultFaultEnv{api: harness.SharedAPIServer(t), vault: harness.StartVault(t)}
	e.vault.ConfigureKubernetesAuth(t, e.api, "kubernetes")
	e.ns = e.api.NewNamespace(t)
	if err := e.vault.Client.Sys().Mount("faults", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	pg, s3 := vaultValues(1)
	// The user name "postgres" is a name, which logs rightly carry; the rest are secrets.
	harness.RecordSecretValue(t, pg["password"].(string), s3["access_key"].(string), s3["secret_key"].(string))
	for path, data := range map[string]map[string]any{"faults/data/postgres-credentials": pg, "faults/data/s3-credentials": s3} {
		if _, err := e.vault.Client.Logical().Write(path, map[string]any{"data": data}); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	e.vault.WritePolicy(t, "faults", `path "faults/data/*" { capabilities = ["read"] }`)
	e.vault.WriteKubernetesRole(t, "", harness.KubernetesRole{Name: "faults", Namespaces: []string{e.ns}, ServiceAccounts: []string{"*"}, Policies: []string{"faults"}, Audience: "vault"})
	e.proxy = harness.NewFaultProxy(t, e.vault.Addr, harness.FaultConfig{Seed: seed, MaxDelay: faultMaxDelay, Classify: vaultFlow})

	e.spc = &secretsstorev1.SecretProviderClass{}
	e.spc.Namespace, e.spc.Name = e.ns, "vault-faults"
	e.spc.Spec.Provider = "vault"
	e.spc.Spec.Parameters = map[string]string{
		"roleName":     "faults",
		"vaultAddress": e.proxy.URL,
		"objects": `- objectName: db-username
  secretPath: faults/data/postgres-credentials
  secretKey: username
- objectName: db-password
  secretPath: faults/data/postgres-credentials
  secretKey: password
- objectName: s3-access-key
  secretPath: faults/data/s3-credentials
  secretKey: access_key
- objectName: s3-secret-key
  secretPath: faults/data/s3-credentials
  secretKey: secret_key
`,
	}
	cls := &classes{}
	cls.set(e.spc)
	// The default retries, with a short wait so they fit the short deadline.
	backend, err := vault.New(vault.Options{Keys: vault.StaticKey("faults-key-0123456789abcdef01234"), RetryWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("vault", backend)
	e.fd = startFaultDriver(t, cls, reg, func(o *driver.Options) { o.ProviderTimeout = faultDeadline })
	e.plan, err = providerclass.NewPlan(e.spc, providerclass.Mount{Namespace: e.ns, PodName: "app", ServiceAccount: "sa"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// volume is pod i's volume with its own ServiceAccount (created here) and a real token
// for audience vault, so every publish logs in on its own.
func (e *vaultFaultEnv) volume(t *testing.T, i int) csiclient.Volume {
	t.Helper()
	sa := fmt.Sprintf("sa-%d", i)
	e.api.CreateServiceAccount(t, e.ns, sa, nil)
	tokens := map[string]csiclient.Token{"vault": {Token: e.api.Token(t, e.ns, sa, time.Hour, "vault"), ExpiresAt: time.Now().Add(time.Hour)}}
	return e.fd.volume(t, i, e.ns, sa, e.spc.Name, tokens)
}

// TestFaultsVaultPublishes is the shorter Vault run of TestFaultsAWSPublishes: 200
// publishes of a four-object class over two KV v2 secrets, each a new ServiceAccount
// that logs in with a real token, through a proxy faulting 10% of the requests.
func TestFaultsVaultPublishes(t *testing.T) {
	const publishes, warmup = 200, 24
	e := startVaultFaultEnv(t, 20261201)
	pg, s3 := vaultValues(1)
	want := map[string]string{"db-username": pg["username"].(string), "db-password": pg["password"].(string),
		"s3-access-key": s3["access_key"].(string), "s3-secret-key": s3["secret_key"].(string)}
	r := runFaultedPublishes(t, e.fd, e.proxy, e.volume, want, warmup, publishes)

	// One publish logs in once, then reads two secrets (and the mount's KV version, once
	// per process); each request is tried at most vaultAttempts times, and Go's HTTP
	// transport may replay an idempotent GET once more when a reused connection is
	// reset under it. A login is a PUT, which the transport never replays.
	const readBound = vaultAttempts * 3 * 2
	most := checkRequestBounds(t, e.proxy.RequestsByKey(), map[string]int{"login": vaultAttempts, "token": readBound})
	r.logAndCheck(t, "Vault", e.fd, e.proxy, publishes,
		fmt.Sprintf("login %d (bound %d), reads %d (bound %d)", most["login"], vaultAttempts, most["token"], readBound))
}
