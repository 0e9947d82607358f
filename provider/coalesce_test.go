package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// countingFetch counts its calls and, when gate is not nil, blocks until gate closes.
type countingFetch struct {
	calls atomic.Int64
	gate  chan struct{}
	value string
	err   error
}

func (f *countingFetch) fetch(ctx context.Context) (string, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return f.value, f.err
}

// fakeClock is a settable clock for the result window.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCoalescerConcurrentBurstMakesOneCall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
	}{
		{"no window: overlap only", 0},
		{"with window", DefaultCoalesceWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := NewCoalescer[string](WithWindow(tc.window))
				f := &countingFetch{gate: make(chan struct{}), value: "v"}
				const n = 50
				results := make([]string, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { results[i], errs[i] = c.Do(t.Context(), "ns/sa\x00obj", f.fetch) })
				}
				// Every caller is now waiting on the one flight.
				synctest.Wait()
				close(f.gate)
				wg.Wait()
				if got := f.calls.Load(); got != 1 {
					t.Fatalf("backend calls = %d, want 1", got)
				}
				for i := range n {
					if errs[i] != nil || results[i] != "v" {
						t.Fatalf("caller %d got (%q, %v), want (\"v\", nil)", i, results[i], errs[i])
					}
				}
			})
		})
	}
}

func TestCoalescerDifferentKeysCallSeparately(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCoalescer[string]()
		gate := make(chan struct{})
		keys := []string{
			CoalesceKey(Identity{Namespace: "a", ServiceAccount: "sa"}, "obj"),
			CoalesceKey(Identity{Namespace: "b", ServiceAccount: "sa"}, "obj"),
			CoalesceKey(Identity{Namespace: "a", ServiceAccount: "sa"}, "other"),
		}
		fetches := make([]*countingFetch, len(keys))
		var wg sync.WaitGroup
		for i, k := range keys {
			fetches[i] = &countingFetch{gate: gate, value: fmt.Sprint("v", i)}
			for range 5 {
				wg.Go(func() {
					v, err := c.Do(t.Context(), k, fetches[i].fetch)
					if err != nil || v != fmt.Sprint("v", i) {
						t.Errorf("key %d: got (%q, %v)", i, v, err)
					}
				})
			}
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		for i, f := range fetches {
			if got := f.calls.Load(); got != 1 {
				t.Errorf("key %d: backend calls = %d, want 1", i, got)
			}
		}
	})
}

func TestCoalesceKeyNeverSharedAcrossIdentities(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
	}{
		{"other namespace", CoalesceKey(Identity{Namespace: "a", ServiceAccount: "sa"}, "o"), CoalesceKey(Identity{Namespace: "b", ServiceAccount: "sa"}, "o")},
		{"other account", CoalesceKey(Identity{Namespace: "a", ServiceAccount: "x"}, "o"), CoalesceKey(Identity{Namespace: "a", ServiceAccount: "y"}, "o")},
		{"shifted separator", CoalesceKey(Identity{Namespace: "a", ServiceAccount: "b/c"}, "d"), CoalesceKey(Identity{Namespace: "a/b", ServiceAccount: "c"}, "d")},
		{"shifted parts", CoalesceKey(Identity{Namespace: "a", ServiceAccount: "b"}, "c", "d"), CoalesceKey(Identity{Namespace: "a", ServiceAccount: "b"}, "c:d")},
		{"part moved into identity", CoalesceKey(Identity{Namespace: "a", ServiceAccount: ""}, "b"), CoalesceKey(Identity{Namespace: "a", ServiceAccount: "b"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.a == tc.b {
				t.Fatalf("keys collide: %q", tc.a)
			}
		})
	}
	// Two pods of one ServiceAccount share a key: that is the point of coalescing.
	a := CoalesceKey(Identity{Namespace: "a", ServiceAccount: "sa", PodName: "p1", PodUID: "1"}, "o")
	b := CoalesceKey(Identity{Namespace: "a", ServiceAccount: "sa", PodName: "p2", PodUID: "2"}, "o")
	if a != b {
		t.Fatalf("pods of one ServiceAccount got different keys %q and %q", a, b)
	}
}

func TestCoalescerKeepsResultsForTheWindowOnly(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	c := NewCoalescer[string](WithWindow(2*time.Second), WithClock(clock.Now))
	f := &countingFetch{value: "v"}
	steps := []struct {
		advance   time.Duration
		wantCalls int64
	}{
		{0, 1},                       // first call
		{0, 1},                       // same instant: kept
		{1999 * time.Millisecond, 1}, // just inside the window
		{time.Millisecond, 2},        // window over: fetch again
		{time.Second, 2},             // inside the new window
		{time.Hour, 3},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		v, err := c.Do(context.Background(), "k", f.fetch)
		if err != nil || v != "v" {
			t.Fatalf("step %d: got (%q, %v)", i, v, err)
		}
		if got := f.calls.Load(); got != s.wantCalls {
			t.Fatalf("step %d: backend calls = %d, want %d", i, got, s.wantCalls)
		}
	}
}

func TestCoalescerDoesNotKeepErrors(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	c := NewCoalescer[string](WithClock(clock.Now))
	f := &countingFetch{err: fmt.Errorf("read obj: %w", ErrUnavailable)}
	for i := range 3 {
		_, err := c.Do(context.Background(), "k", f.fetch)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d: err = %v, want ErrUnavailable", i, err)
		}
	}
	if got := f.calls.Load(); got != 3 {
		t.Fatalf("backend calls = %d, want 3 (errors must not be kept)", got)
	}
	f.err, f.value = nil, "ok"
	if v, err := c.Do(context.Background(), "k", f.fetch); err != nil || v != "ok" {
		t.Fatalf("after recovery got (%q, %v)", v, err)
	}
}

func TestCoalescerWaiterCancellationDoesNotCancelTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCoalescer[string]()
		gate := make(chan struct{})
		var callErr atomic.Value
		fetch := func(ctx context.Context) (string, error) {
			<-gate
			if err := ctx.Err(); err != nil {
				callErr.Store(err)
				return "", err
			}
			return "v", nil
		}
		leaving, cancel := context.WithCancel(t.Context())
		var leftErr error
		var stayed string
		var stayedErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, leftErr = c.Do(leaving, "k", fetch) })
		synctest.Wait()
		wg.Go(func() { stayed, stayedErr = c.Do(t.Context(), "k", fetch) })
		synctest.Wait()

		cancel()
		synctest.Wait()
		// The caller that left has returned while the call is still blocked.
		if !errors.Is(leftErr, context.Canceled) {
			t.Fatalf("cancelled caller: err = %v, want context.Canceled", leftErr)
		}
		close(gate)
		wg.Wait()
		if v := callErr.Load(); v != nil {
			t.Fatalf("shared call saw its context end: %v", v)
		}
		if stayedErr != nil || stayed != "v" {
			t.Fatalf("remaining caller got (%q, %v), want (\"v\", nil)", stayed, stayedErr)
		}
	})
}

func TestCoalescerSharedCallKeepsADeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		for _, tc := range []struct {
			name    string
			ctx     func() (context.Context, context.CancelFunc)
			wantDur time.Duration
		}{
			{"caller deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 5*time.Second)
			}, 5 * time.Second},
			{"no caller deadline", func() (context.Context, context.CancelFunc) {
				return context.WithCancel(context.Background())
			}, 7 * time.Second},
		} {
			c := NewCoalescer[time.Time](WithWindow(0), WithCallTimeout(7*time.Second))
			ctx, cancel := tc.ctx()
			got, err := c.Do(ctx, "k", func(ctx context.Context) (time.Time, error) {
				d, ok := ctx.Deadline()
				if !ok {
					return time.Time{}, errors.New("no deadline")
				}
				return d, nil
			})
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if want := start.Add(tc.wantDur); !got.Equal(want) {
				t.Errorf("%s: deadline %v, want %v", tc.name, got, want)
			}
		}
	})
}

func TestCoalescerTurnsAPanicIntoAnError(t *testing.T) {
	c := NewCoalescer[string]()
	_, err := c.Do(context.Background(), "k", func(context.Context) (string, error) { panic("boom") })
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func BenchmarkCoalescerHit(b *testing.B) {
	c := NewCoalescer[string]()
	fetch := func(context.Context) (string, error) { return "v", nil }
	ctx := context.Background()
	if _, err := c.Do(ctx, "k", fetch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(ctx, "k", fetch); err != nil {
			b.Fatal(err)
		}
	}
}
