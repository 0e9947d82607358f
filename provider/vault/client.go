package vault

import (
	cryptotls "crypto/tls"
	"fmt"
	"net/http"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/secretmount/secretmount/provider"
)

// clientKey is everything that makes two Vault clients differ; tokens are per request.
type clientKey struct {
	address       string
	namespace     string
	caCert        string
	caDir         string
	serverName    string
	skipVerify    bool
	clientCert    string
	clientKeyPath string
}

// client returns the shared Vault client for k, building it on first use. Clients carry
// no token: each request sets the token of its identity.
func (b *Backend) client(k clientKey) (*vaultapi.Client, error) {
	b.clientsMu.Lock()
	defer b.clientsMu.Unlock()
	if c, ok := b.clients[k]; ok {
		return c, nil
	}
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client for %s: %v: %w", k.address, cfg.Error, provider.ErrInvalid)
	}
	// DefaultConfig reads VAULT_* variables; the SecretProviderClass and flags decide
	// instead, so reset what it may have taken from the environment.
	cfg.Address = k.address
	cfg.AgentAddress = ""
	cfg.SRVLookup = false
	cfg.Limiter = nil
	cfg.MaxRetries = b.opts.MaxRetries
	cfg.MinRetryWait = b.opts.RetryWait
	cfg.MaxRetryWait = 4 * b.opts.RetryWait
	cfg.CheckRetry = checkRetry
	cfg.Timeout = b.opts.Timeout
	tls := &vaultapi.TLSConfig{
		CACert:        k.caCert,
		CAPath:        k.caDir,
		ClientCert:    k.clientCert,
		ClientKey:     k.clientKeyPath,
		TLSServerName: k.serverName,
		Insecure:      k.skipVerify,
	}
	transport, ok := cfg.HttpClient.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("vault client for %s: unexpected transport %T: %w", k.address, cfg.HttpClient.Transport, provider.ErrInvalid)
	}
	transport.TLSClientConfig = &cryptotls.Config{MinVersion: cryptotls.VersionTLS12}
	if err := cfg.ConfigureTLS(tls); err != nil {
		return nil, fmt.Errorf("vault TLS settings for %s: %v: %w", k.address, err, provider.ErrInvalid)
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %v: %w", k.address, err, provider.ErrInvalid)
	}
	c.ClearToken()
	c.SetHeaders(http.Header{vaultapi.RequestHeaderName: []string{"true"}})
	if k.namespace != "" {
		c.SetNamespace(k.namespace)
	}
	b.clients[k] = c
	return c, nil
}
