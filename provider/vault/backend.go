package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/sync/singleflight"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

var _ provider.Provider = (*Backend)(nil)

// DefaultRenewFraction is the share of a lease's (or token's) TTL after which it is
// renewed rather than reused as is.
const DefaultRenewFraction = 2.0 / 3.0

// Options configure a Backend. Zero values mean the defaults documented per field.
type Options struct {
	// DefaultAddress is used when a SecretProviderClass does not set vaultAddress.
	DefaultAddress string
	// RenewFraction of a TTL after which tokens and leases are renewed; 0 means
	// DefaultRenewFraction. Must be in (0, 1).
	RenewFraction float64
	// Keys supplies the HMAC key of content digests (versions of non-KV v2 objects).
	Keys KeySource
	// Tokens mints a ServiceAccount token when the identity carries none for the
	// audience (sync without a mounting pod); nil means such fetches are refused.
	Tokens provider.TokenSource
	// CallerToken is a Vault token of the person running `secretmount render`, used
	// instead of a Kubernetes login (no role or ServiceAccount needed). Never set on a
	// node: every fetch of the backend would share it.
	CallerToken string
	// MaxRetries of a request that failed with a connection error or a 5xx, or whose
	// answer was cut short (GETs and logins only, see checkRetry); 0 means 2,
	// negative means none.
	MaxRetries int
	// RetryWait is the shortest wait between retries; 0 means 250ms.
	RetryWait time.Duration
	// Timeout of one Vault request including retries; 0 means 30s.
	Timeout time.Duration
	// CoalesceWindow keeps a successful read for this long so that a burst of
	// publishes that arrive one after another still makes one read; 0 means 2s,
	// negative means only in-flight reads are shared.
	CoalesceWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Backend is the Vault provider. It is safe for concurrent use.
type Backend struct {
	opts Options

	clientsMu sync.Mutex
	clients   map[clientKey]*vaultapi.Client

	tokens *tokenCache
	mounts *mountCache
	leases *leaseCache
	reads  *provider.Coalescer[*readResult]
	logins singleflight.Group
}

// New returns a Vault backend.
func New(opts Options) (*Backend, error) {
	if opts.RenewFraction == 0 {
		opts.RenewFraction = DefaultRenewFraction
	}
	if opts.RenewFraction <= 0 || opts.RenewFraction >= 1 {
		return nil, fmt.Errorf("vault renew fraction %v: must be between 0 and 1", opts.RenewFraction)
	}
	if opts.Keys == nil {
		return nil, errors.New("vault backend: no HMAC key source for object versions")
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 2
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryWait == 0 {
		opts.RetryWait = 250 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.CoalesceWindow == 0 {
		opts.CoalesceWindow = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Backend{
		opts:    opts,
		clients: map[clientKey]*vaultapi.Client{},
		tokens:  &tokenCache{entries: map[tokenKey]*tokenEntry{}},
		mounts:  &mountCache{entries: map[mountKey]mountInfo{}},
		leases:  &leaseCache{entries: map[string]*leaseEntry{}},
		reads:   provider.NewCoalescer[*readResult](provider.WithWindow(opts.CoalesceWindow), provider.WithClock(opts.Now), provider.WithCallTimeout(opts.Timeout)),
	}, nil
}

// Fetch reads every object of a Vault-dialect plan with the identity's own Vault login.
// Objects that name the same path, method and arguments share one read, so a dynamic
// secret's username and password come from one lease.
func (b *Backend) Fetch(ctx context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	s, err := b.newSession(plan, id)
	if err != nil {
		return nil, err
	}
	hmacKey, err := b.opts.Keys.Key(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: key for object versions: %v: %w", err, provider.ErrUnavailable)
	}
	results := map[string]*readResult{}
	out := make([]providerclass.ObjectContent, 0, len(plan.Objects))
	for i := range plan.Objects {
		obj := &plan.Objects[i]
		req, err := s.request(obj)
		if err != nil {
			return nil, err
		}
		res, ok := results[req.sharedKey]
		if !ok {
			res, err = s.read(ctx, obj, req)
			if err != nil {
				return nil, err
			}
			results[req.sharedKey] = res
		}
		content, err := s.content(obj, req, res, hmacKey)
		if err != nil {
			return nil, err
		}
		out = append(out, content)
	}
	return out, nil
}
