package vault

import (
	"context"
	"fmt"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/secretmount/secretmount/provider"
)

// tokenKey is the scope of one Vault login. identity is provider.Identity.Key, so two
// ServiceAccounts never share a token.
type tokenKey struct {
	address, namespace, mount, role, identity string
}

func (k tokenKey) String() string {
	return k.address + "\x00" + k.namespace + "\x00" + k.mount + "\x00" + k.role + "\x00" + k.identity
}

type tokenEntry struct {
	token     string
	issued    time.Time
	ttl       time.Duration // 0: does not expire
	renewable bool
}

type tokenCache struct {
	mu      sync.Mutex
	entries map[tokenKey]*tokenEntry
}

func (c *tokenCache) get(k tokenKey) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[k]
}

// put keeps e and forgets tokens that have expired.
func (c *tokenCache) put(k tokenKey, e *tokenEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, old := range c.entries {
		if old.ttl > 0 && !e.issued.Before(old.issued.Add(old.ttl)) {
			delete(c.entries, key)
		}
	}
	c.entries[k] = e
}

// drop forgets the token of k if it is still token, so a concurrent fresh login is kept.
func (c *tokenCache) drop(k tokenKey, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && e.token == token {
		delete(c.entries, k)
	}
}

// token returns a Vault token for the session's identity: the cached one while it is
// fresh, renewed once it is past the renew fraction of its TTL, or a new login. fresh
// reports whether it came from a login in this call (so a refusal is not retried).
func (s *session) token(ctx context.Context) (token string, fresh bool, err error) {
	if s.b.opts.CallerToken != "" {
		// Reported as fresh: a refusal is final, there is no login to retry.
		return s.b.opts.CallerToken, true, nil
	}
	if e := s.b.tokens.get(s.tokenKey); e != nil && s.usable(e) {
		return e.token, false, nil
	}
	v, err, _ := s.b.logins.Do(s.tokenKey.String(), func() (any, error) {
		// Shared by every waiter: one waiter going away must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.b.opts.Timeout)
		defer cancel()
		// Another caller may have logged in while this one waited.
		if e := s.b.tokens.get(s.tokenKey); e != nil && s.usable(e) {
			return e, nil
		}
		if e := s.b.tokens.get(s.tokenKey); e != nil && e.renewable {
			if renewed, err := s.renewToken(ctx, e); err == nil {
				s.b.tokens.put(s.tokenKey, renewed)
				return renewed, nil
			}
			s.b.tokens.drop(s.tokenKey, e.token)
		}
		e, err := s.login(ctx)
		if err != nil {
			return nil, err
		}
		s.b.tokens.put(s.tokenKey, e)
		return e, nil
	})
	if err != nil {
		return "", false, err
	}
	return v.(*tokenEntry).token, true, nil
}

// usable: within the renew fraction of its TTL.
func (s *session) usable(e *tokenEntry) bool {
	if e.ttl == 0 {
		return true
	}
	return s.b.opts.Now().Before(e.issued.Add(time.Duration(float64(e.ttl) * s.b.opts.RenewFraction)))
}

// forgetToken drops a token Vault refused, so the next call logs in again.
func (s *session) forgetToken(token string) { s.b.tokens.drop(s.tokenKey, token) }

func (s *session) login(ctx context.Context) (*tokenEntry, error) {
	jwt, err := s.serviceAccountToken(ctx)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("vault login with %s", s.roleRef())
	r := s.client.NewRequest("POST", "/v1/auth/"+s.params.AuthMountPath+"/login")
	r.ClientToken = ""
	if err := r.SetJSONBody(map[string]any{"role": s.params.RoleName, "jwt": jwt}); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", what, err, provider.ErrInvalid)
	}
	now := s.b.opts.Now()
	secret, err := s.do(ctx, r)
	if err != nil {
		return nil, classify(err, what)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%s: vault returned no token: %w", what, provider.ErrUnavailable)
	}
	return &tokenEntry{
		token:     secret.Auth.ClientToken,
		issued:    now,
		ttl:       time.Duration(secret.Auth.LeaseDuration) * time.Second,
		renewable: secret.Auth.Renewable,
	}, nil
}

func (s *session) renewToken(ctx context.Context, e *tokenEntry) (*tokenEntry, error) {
	r := s.client.NewRequest("PUT", "/v1/auth/token/renew-self")
	r.ClientToken = e.token
	if err := r.SetJSONBody(map[string]any{"increment": int(e.ttl / time.Second)}); err != nil {
		return nil, err
	}
	now := s.b.opts.Now()
	secret, err := s.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if secret == nil || secret.Auth == nil {
		return nil, fmt.Errorf("vault token renewal returned no auth")
	}
	ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second
	// A renewal capped by the token's max TTL buys too little: log in again instead.
	if e.ttl > 0 && ttl < time.Duration(float64(e.ttl)*(1-s.b.opts.RenewFraction)) {
		return nil, fmt.Errorf("vault token near its max TTL")
	}
	return &tokenEntry{token: e.token, issued: now, ttl: ttl, renewable: secret.Auth.Renewable}, nil
}

// serviceAccountToken is the pod's projected token for the audience, or one minted by
// the TokenSource when the identity carries none.
func (s *session) serviceAccountToken(ctx context.Context) (string, error) {
	aud := s.params.Audience
	if t, ok := s.id.Tokens[aud]; ok && t.Token != "" {
		return t.Token, nil
	}
	if s.b.opts.Tokens == nil {
		return "", fmt.Errorf("vault login with %s: no ServiceAccount token for audience %q (add it to the CSIDriver's tokenRequests): %w", s.roleRef(), aud, provider.ErrPermissionDenied)
	}
	t, err := s.b.opts.Tokens.Token(ctx, s.id, aud)
	if err != nil {
		return "", fmt.Errorf("vault login with %s: ServiceAccount token for audience %q: %w", s.roleRef(), aud, err)
	}
	return t.Token, nil
}

// do sends r and parses the answer; a 204 yields a nil secret.
func (s *session) do(ctx context.Context, r *vaultapi.Request) (*vaultapi.Secret, error) {
	//nolint:staticcheck // the raw request is the one call that takes method, query, body and token together.
	resp, err := s.client.RawRequestWithContext(ctx, r)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == 204 {
		return nil, nil
	}
	return vaultapi.ParseSecret(resp.Body)
}
