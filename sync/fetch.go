package sync

import (
	"context"
	gosync "sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// fetchKey is what makes two fetches the same within one rotation tick: the identity,
// the class as it was (UID and generation), and the force value of a SecretSync that asks
// for a fresh fetch.
type fetchKey struct {
	identity        string
	classUID        types.UID
	classGeneration int64
	force           string
}

// tickFetcher shares fetches within one rotation tick: every SecretSync of the same
// (ServiceAccount, SecretProviderClass) reuses the first successful fetch of the tick, so
// a backend sees one call per object per tick. A failure is shared with those already
// waiting but not kept, so the next attempt asks again; tick() forgets everything.
type tickFetcher struct {
	registry *provider.Registry
	metrics  *Metrics

	mu    gosync.Mutex
	calls map[fetchKey]*fetchCall
}

type fetchCall struct {
	done     chan struct{}
	contents []providerclass.ObjectContent
	err      error
}

func newTickFetcher(registry *provider.Registry, metrics *Metrics) *tickFetcher {
	return &tickFetcher{registry: registry, metrics: metrics, calls: map[fetchKey]*fetchCall{}}
}

// tick starts a new rotation tick: later fetches go to the backend again.
func (f *tickFetcher) tick() {
	f.mu.Lock()
	f.calls = map[fetchKey]*fetchCall{}
	f.mu.Unlock()
}

// fetch returns the plan's contents for id, from this tick's earlier fetch when there was
// one. The contents are shared: callers must not modify them.
func (f *tickFetcher) fetch(ctx context.Context, key fetchKey, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	f.mu.Lock()
	call, ok := f.calls[key]
	if !ok {
		call = &fetchCall{done: make(chan struct{})}
		f.calls[key] = call
	}
	f.mu.Unlock()
	if ok {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return call.contents, call.err
	}

	call.contents, call.err = f.backendFetch(ctx, plan, id)
	if call.err != nil {
		f.mu.Lock()
		if f.calls[key] == call {
			delete(f.calls, key)
		}
		f.mu.Unlock()
	}
	close(call.done)
	return call.contents, call.err
}

func (f *tickFetcher) backendFetch(ctx context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	backend, err := f.registry.Get(plan.Provider)
	if err != nil {
		return nil, err
	}
	f.metrics.fetched(plan.Provider)
	return backend.Fetch(ctx, plan, id)
}
