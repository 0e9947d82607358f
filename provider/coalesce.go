package provider

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Coalescing defaults.
const (
	// DefaultCoalesceWindow is how long a successful result answers identical
	// requests that arrive after the call finished: long enough to absorb a burst of
	// pod starts or one rotation tick over many volumes, short enough that a change
	// in the backend shows on the next poll.
	DefaultCoalesceWindow = 2 * time.Second
	// DefaultCoalesceTimeout bounds a shared call whose first caller set no deadline.
	DefaultCoalesceTimeout = 30 * time.Second
)

// Coalescer turns identical concurrent (or closely sequential) requests into one
// backend call. A backend uses one per kind of request, typically per object.
//
// Keys are built by the caller and must contain everything the result depends on,
// the identity above all (see CoalesceKey): a key without the identity would hand
// one ServiceAccount's content to another. Results are shared between the callers of
// a key, so they must be treated as read-only.
type Coalescer[V any] struct {
	group   singleflight.Group
	window  time.Duration
	timeout time.Duration
	now     func() time.Time

	mu        sync.Mutex
	recent    map[string]recentResult[V]
	lastSweep time.Time
}

type recentResult[V any] struct {
	value   V
	expires time.Time
}

// CoalesceOption configures a Coalescer.
type CoalesceOption func(*coalesceConfig)

type coalesceConfig struct {
	window  time.Duration
	timeout time.Duration
	now     func() time.Time
}

// WithWindow sets how long a successful result is kept; zero keeps nothing, so only
// calls that overlap in time are merged.
func WithWindow(d time.Duration) CoalesceOption {
	return func(c *coalesceConfig) { c.window = max(d, 0) }
}

// WithCallTimeout bounds a shared call whose first caller's context has no deadline.
func WithCallTimeout(d time.Duration) CoalesceOption {
	return func(c *coalesceConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithClock replaces time.Now for the result window.
func WithClock(now func() time.Time) CoalesceOption {
	return func(c *coalesceConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// NewCoalescer returns a Coalescer with DefaultCoalesceWindow and
// DefaultCoalesceTimeout unless options say otherwise.
func NewCoalescer[V any](opts ...CoalesceOption) *Coalescer[V] {
	cfg := coalesceConfig{window: DefaultCoalesceWindow, timeout: DefaultCoalesceTimeout, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	return &Coalescer[V]{
		window:  cfg.window,
		timeout: cfg.timeout,
		now:     cfg.now,
		recent:  map[string]recentResult[V]{},
	}
}

// CoalesceKey joins an identity (namespace and ServiceAccount) and the parts of a
// request into a key. Every piece is length-prefixed, so two different identities or
// requests never share a key, whatever characters they contain.
func CoalesceKey(id Identity, parts ...string) string {
	var b strings.Builder
	for _, p := range append([]string{id.Namespace, id.ServiceAccount}, parts...) {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// Do returns the result of fetch for key, calling fetch at most once for all callers
// that arrive while a call for key runs, and not at all while a successful result for
// key is younger than the window. Errors are returned to the callers of that call
// and not kept.
//
// The shared call runs detached from any one caller's cancellation (it keeps the
// context's values, and its deadline, or the call timeout when it has none), so one
// caller giving up does not fail the others. Each caller returns as soon as its own
// ctx is done.
func (c *Coalescer[V]) Do(ctx context.Context, key string, fetch func(context.Context) (V, error)) (V, error) {
	if v, ok := c.lookup(key); ok {
		return v, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		// A call that finished between the lookup above and this flight may already
		// have left a result.
		if v, ok := c.lookup(key); ok {
			return v, nil
		}
		v, err := c.call(ctx, key, fetch)
		if err != nil {
			return v, err
		}
		c.store(key, v)
		return v, nil
	})
	var zero V
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(V), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// call runs fetch under a detached context. A panic in fetch would otherwise be
// re-raised by singleflight on a goroutine of its own and end the process.
func (c *Coalescer[V]) call(ctx context.Context, key string, fetch func(context.Context) (V, error)) (v V, err error) {
	callCtx := context.WithoutCancel(ctx)
	var cancel context.CancelFunc
	if deadline, ok := ctx.Deadline(); ok {
		callCtx, cancel = context.WithDeadline(callCtx, deadline)
	} else {
		callCtx, cancel = context.WithTimeout(callCtx, c.timeout)
	}
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, fmt.Errorf("coalesced fetch panicked: %w", ErrUnavailable)
		}
	}()
	return fetch(callCtx)
}

func (c *Coalescer[V]) lookup(key string) (V, bool) {
	var zero V
	if c.window <= 0 {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.recent[key]
	if !ok {
		return zero, false
	}
	if !c.now().Before(r.expires) {
		delete(c.recent, key)
		return zero, false
	}
	return r.value, true
}

func (c *Coalescer[V]) store(key string, v V) {
	if c.window <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.recent[key] = recentResult[V]{value: v, expires: now.Add(c.window)}
	// Sweep expired results at most once per window, so keys that are never asked
	// for again do not pile up.
	if now.Sub(c.lastSweep) < c.window {
		return
	}
	c.lastSweep = now
	for k, r := range c.recent {
		if !now.Before(r.expires) {
			delete(c.recent, k)
		}
	}
}
