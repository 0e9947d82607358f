package aws

import (
	"sync"
	"time"
)

// contentMemory remembers the last content fetched per identity and object, so a
// refresh can ask DescribeSecret whether the version changed instead of fetching the
// value again. Entries unused for ttl are forgotten.
type contentMemory struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*remembered
}

type remembered struct {
	version string
	value   []byte
	// verified is when the version was last fetched or confirmed current; used is when
	// the entry was last read.
	verified, used time.Time
}

func newContentMemory(ttl time.Duration, now func() time.Time) *contentMemory {
	return &contentMemory{ttl: ttl, now: now, entries: map[string]*remembered{}}
}

func (m *contentMemory) get(key string) (remembered, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return remembered{}, false
	}
	now := m.now()
	if now.Sub(e.used) >= m.ttl {
		delete(m.entries, key)
		return remembered{}, false
	}
	e.used = now
	return *e, true
}

// touch records that the remembered version was confirmed current.
func (m *contentMemory) touch(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		e.verified = m.now()
	}
}

func (m *contentMemory) put(key, version string, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, e := range m.entries {
		if now.Sub(e.used) >= m.ttl {
			delete(m.entries, k)
		}
	}
	m.entries[key] = &remembered{version: version, value: append([]byte(nil), value...), verified: now, used: now}
}

// batchDenials remembers, per credentials and region, that BatchGetSecretValue was
// denied, so later fetches go straight to single calls for a while.
type batchDenials struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	until map[string]time.Time
}

func newBatchDenials(ttl time.Duration, now func() time.Time) *batchDenials {
	return &batchDenials{ttl: ttl, now: now, until: map[string]time.Time{}}
}

func (d *batchDenials) denied(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.until[key]
	if ok && d.now().After(until) {
		delete(d.until, key)
		return false
	}
	return ok
}

func (d *batchDenials) deny(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for k, until := range d.until {
		if now.After(until) {
			delete(d.until, k)
		}
	}
	d.until[key] = now.Add(d.ttl)
}
