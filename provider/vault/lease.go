package vault

import (
	"context"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// leaseEntry is a dynamic secret kept for reuse: rotation polls within its lease get the
// same credentials instead of new ones.
type leaseEntry struct {
	id        string
	res       *readResult
	issued    time.Time     // of the last issue or renewal
	ttl       time.Duration // from issued
	firstTTL  time.Duration // asked for again on renewal
	renewable bool
}

func newLease(secret *vaultapi.Secret, res *readResult, now time.Time) *leaseEntry {
	ttl := time.Duration(secret.LeaseDuration) * time.Second
	return &leaseEntry{id: secret.LeaseID, res: res, issued: now, ttl: ttl, firstTTL: ttl, renewable: secret.Renewable}
}

// leaseCache is keyed by identity, address, namespace, method, path and arguments.
type leaseCache struct {
	mu      sync.Mutex
	entries map[string]*leaseEntry
}

func (c *leaseCache) get(k string) *leaseEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[k]
}

// put keeps e and forgets leases that have run out, so volumes that are gone do not
// leave their credentials behind in memory.
func (c *leaseCache) put(k string, e *leaseEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, old := range c.entries {
		if !now.Before(old.issued.Add(old.ttl)) {
			delete(c.entries, key)
		}
	}
	c.entries[k] = e
}

func (c *leaseCache) drop(k string, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok && e.id == id {
		delete(c.entries, k)
	}
}

// reuseLease returns the kept result of a dynamic secret while its lease is good:
// as is before the renew fraction of its TTL, renewed after it. ok is false when new
// credentials must be minted: no lease, expired, renewal refused, or a renewal that
// the max TTL cut short.
func (s *session) reuseLease(ctx context.Context, key, token string) (*readResult, bool) {
	e := s.b.leases.get(key)
	if e == nil {
		return nil, false
	}
	now := s.b.opts.Now()
	if now.Before(e.issued.Add(time.Duration(float64(e.ttl) * s.b.opts.RenewFraction))) {
		return e.res, true
	}
	if !e.renewable || !now.Before(e.issued.Add(e.ttl)) {
		s.b.leases.drop(key, e.id)
		return nil, false
	}
	r := s.client.NewRequest("PUT", "/v1/sys/leases/renew")
	r.ClientToken = token
	if err := r.SetJSONBody(map[string]any{"lease_id": e.id, "increment": int(e.firstTTL / time.Second)}); err != nil {
		return nil, false
	}
	secret, err := s.do(ctx, r)
	if err != nil || secret == nil || secret.LeaseDuration <= 0 {
		s.b.leases.drop(key, e.id)
		return nil, false
	}
	ttl := time.Duration(secret.LeaseDuration) * time.Second
	if ttl < time.Duration(float64(e.firstTTL)*(1-s.b.opts.RenewFraction)) {
		// The max TTL is near: the next poll would find the credentials expiring.
		s.b.leases.drop(key, e.id)
		return nil, false
	}
	s.b.leases.put(key, &leaseEntry{id: e.id, res: e.res, issued: now, ttl: ttl, firstTTL: e.firstTTL, renewable: secret.Renewable}, now)
	return e.res, true
}
