package harness

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

const vaultTimeout = time.Minute

// Vault is a running OpenBao dev server: in memory, unsealed, with KV v2 at secret/ and
// a root token. It speaks the Vault HTTP API, so github.com/hashicorp/vault/api and the
// Vault provider talk to it unchanged.
type Vault struct {
	// Addr is the server's URL, http://127.0.0.1:<port>.
	Addr string
	// RootToken is the dev server's root token.
	RootToken string
	// Client is a root client. Tests on a shared server that change a client's token or
	// namespace use NewClient instead.
	Client *vaultapi.Client

	inst *instance
	// authMu serialises ConfigureKubernetesAuth: parallel tests on a shared server would
	// otherwise both see a mount missing and both try to enable it.
	authMu sync.Mutex
}

func (v *Vault) instanceOf() *instance { return v.inst }

// NewClient returns a new client for the server, holding the root token.
func (v *Vault) NewClient(t testing.TB) *vaultapi.Client {
	t.Helper()
	c, err := newVaultClient(v.Addr, v.RootToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newVaultClient(addr, token string) (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = addr
	// Fail rather than retry: the server is local, and a retried error hides the first.
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to build a Vault client for %s: %w", addr, err)
	}
	c.SetToken(token)
	return c, nil
}

// StartVault starts an OpenBao dev server for this test and stops it when the test
// ends. Prefer SharedVault with unique paths, policies and roles.
func StartVault(t testing.TB) *Vault {
	t.Helper()
	v, err := startVault()
	if err != nil {
		failStart(t, "Vault", err)
	}
	t.Cleanup(func() {
		if err := v.inst.stop(); err != nil {
			t.Errorf("failed to stop Vault: %v", err)
		}
	})
	v.inst.logOnFailure(t)
	return v
}

func startVault() (*Vault, error) {
	return retryPortClash(startVaultOnce)
}

func startVaultOnce() (*Vault, error) {
	path, err := executable(BaoPath(), "OpenBao (bao)")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	inst, err := newInstance("vault")
	if err != nil {
		return nil, err
	}
	addr := "http://127.0.0.1:" + strconv.Itoa(port)
	// The dev server writes its root token to $HOME/.bao-token; HOME is the instance's
	// folder (see minimalEnv), so nothing lands in the real home.
	_, err = inst.start(processSpec{
		name: "bao",
		path: path,
		args: []string{"server", "-dev", "-dev-root-token-id=" + token, "-dev-listen-address=127.0.0.1:" + strconv.Itoa(port)},
		log:  inst.path("bao.log"),
	})
	if err != nil {
		return nil, inst.failStartup(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	err = waitReady("Vault /v1/sys/health", vaultTimeout, inst.procs, func() error {
		resp, err := client.Get(addr + "/v1/sys/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/v1/sys/health answered %s", resp.Status)
		}
		return nil
	})
	client.CloseIdleConnections()
	if err != nil {
		return nil, inst.failStartup(err)
	}
	vc, err := newVaultClient(addr, token)
	if err != nil {
		return nil, inst.failStartup(err)
	}
	if err := recordValue("vault-root-token", token); err != nil {
		return nil, inst.failStartup(err)
	}
	return &Vault{Addr: addr, RootToken: token, Client: vc, inst: inst}, nil
}
