package sync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// countingProvider counts backend reads per object name.
type countingProvider struct {
	mu    gosync.Mutex
	reads map[string]int
	fail  atomic.Bool
}

func (p *countingProvider) Fetch(_ context.Context, plan *providerclass.Plan, _ provider.Identity) ([]providerclass.ObjectContent, error) {
	p.mu.Lock()
	for _, o := range plan.Objects {
		p.reads[o.Name]++
	}
	p.mu.Unlock()
	if p.fail.Load() {
		return nil, fmt.Errorf("backend down: %w", provider.ErrUnavailable)
	}
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		out[i] = providerclass.ObjectContent{Bytes: []byte("value of " + o.Name), Version: "1"}
	}
	return out, nil
}

func (p *countingProvider) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for k, v := range p.reads {
		m[k] = v
	}
	return m
}

func TestTickFetcherOneCallPerObjectPerTick(t *testing.T) {
	backend := &countingProvider{reads: map[string]int{}}
	reg := provider.NewRegistry()
	reg.Register("fake", backend)
	f := newTickFetcher(reg, nil)
	plan := &providerclass.Plan{Provider: "fake", Objects: []providerclass.Object{{Name: "prod/cnpg/postgres-credentials"}, {Name: "prod/cnpg/s3-credentials"}}}
	id := provider.Identity{Namespace: "cnpg-system", ServiceAccount: "cnpg-sa"}
	key := fetchKey{identity: id.Key(), classUID: "spc-1", classGeneration: 1}

	const syncs, ticks = 20, 3
	for tick := 1; tick <= ticks; tick++ {
		f.tick()
		var wg gosync.WaitGroup
		errs := make(chan error, syncs)
		for range syncs {
			wg.Go(func() {
				got, err := f.fetch(context.Background(), key, plan, id)
				if err == nil && (len(got) != 2 || string(got[1].Bytes) != "value of prod/cnpg/s3-credentials") {
					err = fmt.Errorf("got %d contents", len(got))
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for obj, n := range backend.snapshot() {
			if n > tick {
				t.Fatalf("after tick %d: %d backend reads of %s, want at most one per tick", tick, n, obj)
			}
		}
	}
	t.Logf("backend reads after %d SecretSyncs x %d ticks: %v", syncs, ticks, backend.snapshot())
}

func TestTickFetcherKeepsNoFailure(t *testing.T) {
	backend := &countingProvider{reads: map[string]int{}}
	reg := provider.NewRegistry()
	reg.Register("fake", backend)
	f := newTickFetcher(reg, nil)
	plan := &providerclass.Plan{Provider: "fake", Objects: []providerclass.Object{{Name: "a"}}}
	id := provider.Identity{Namespace: "ns", ServiceAccount: "sa"}
	key := fetchKey{identity: id.Key(), classUID: "spc-1"}

	backend.fail.Store(true)
	if _, err := f.fetch(context.Background(), key, plan, id); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
	backend.fail.Store(false)
	if _, err := f.fetch(context.Background(), key, plan, id); err != nil {
		t.Fatalf("a failure was kept: %v", err)
	}
	// Another identity, class generation or force value is another fetch.
	other := []fetchKey{
		{identity: "ns/other", classUID: "spc-1"},
		{identity: id.Key(), classUID: "spc-1", classGeneration: 2},
		{identity: id.Key(), classUID: "spc-1", force: "now"},
	}
	for _, k := range other {
		if _, err := f.fetch(context.Background(), k, plan, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := backend.snapshot()["a"]; n != 5 {
		t.Fatalf("%d backend reads, want 5 (failure, retry, three distinct keys)", n)
	}
	if _, err := f.fetch(context.Background(), key, plan, id); err != nil || backend.snapshot()["a"] != 5 {
		t.Fatalf("a repeated fetch within the tick reached the backend (err %v)", err)
	}
}

func TestTickFetcherUnknownProvider(t *testing.T) {
	f := newTickFetcher(provider.NewRegistry(), nil)
	_, err := f.fetch(context.Background(), fetchKey{}, &providerclass.Plan{Provider: "gcp"}, provider.Identity{})
	if !errors.Is(err, provider.ErrUnknownProvider) {
		t.Fatalf("error %v, want ErrUnknownProvider", err)
	}
}
