package aws

import (
	"context"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sync/singleflight"
)

// credentialCache keeps minted credentials per scope (role and token subject) until
// shortly before they expire. Concurrent misses for one scope make one mint.
type credentialCache struct {
	margin time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu      sync.Mutex
	entries map[string]cachedCredentials
}

type cachedCredentials struct {
	creds   sdkaws.Credentials
	renewAt time.Time // zero: never expires
}

func newCredentialCache(margin time.Duration, now func() time.Time) *credentialCache {
	return &credentialCache{margin: margin, now: now, entries: map[string]cachedCredentials{}}
}

// get returns the credentials of scope, minting them when absent or about to expire.
func (c *credentialCache) get(ctx context.Context, scope string, mint func(context.Context) (sdkaws.Credentials, error)) (sdkaws.Credentials, error) {
	if creds, ok := c.lookup(scope); ok {
		return creds, nil
	}
	ch := c.flight.DoChan(scope, func() (any, error) {
		// A caller that arrived after the mint finished finds it here.
		if creds, ok := c.lookup(scope); ok {
			return creds, nil
		}
		callCtx := context.WithoutCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			callCtx, cancel = context.WithDeadline(callCtx, deadline)
			defer cancel()
		}
		creds, err := mint(callCtx)
		if err != nil {
			return sdkaws.Credentials{}, err
		}
		c.store(scope, creds)
		return creds, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return sdkaws.Credentials{}, r.Err
		}
		return r.Val.(sdkaws.Credentials), nil
	case <-ctx.Done():
		return sdkaws.Credentials{}, ctx.Err()
	}
}

func (c *credentialCache) lookup(scope string) (sdkaws.Credentials, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[scope]
	if !ok {
		return sdkaws.Credentials{}, false
	}
	if !e.renewAt.IsZero() && !c.now().Before(e.renewAt) {
		delete(c.entries, scope)
		return sdkaws.Credentials{}, false
	}
	return e.creds, true
}

func (c *credentialCache) store(scope string, creds sdkaws.Credentials) {
	now := c.now()
	e := cachedCredentials{creds: creds}
	if creds.CanExpire {
		// Renew a margin before expiry, but never sooner than half-way through a short
		// lifetime, so short-lived credentials are still reused.
		margin := c.margin
		if half := creds.Expires.Sub(now) / 2; half < margin {
			margin = max(half, 0)
		}
		e.renewAt = creds.Expires.Add(-margin)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, old := range c.entries {
		if !old.renewAt.IsZero() && !now.Before(old.renewAt) {
			delete(c.entries, k)
		}
	}
	c.entries[scope] = e
}

// forget drops the credentials of scope.
func (c *credentialCache) forget(scope string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, scope)
}
