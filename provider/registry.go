package provider

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps spec.provider names to backends.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
	fallback  func(name string) (Provider, bool)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{providers: map[string]Provider{}} }

// Register makes p the backend for spec.provider name, replacing any earlier one.
func (r *Registry) Register(name string, p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[name] = p
}

// SetFallback sets the lookup for names with no registered backend (external plugins).
func (r *Registry) SetFallback(fallback func(name string) (Provider, bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fallback = fallback
}

// Get returns the backend for name.
func (r *Registry) Get(name string) (Provider, error) {
	r.mu.RLock()
	p, ok := r.providers[name]
	fallback := r.fallback
	r.mu.RUnlock()
	if ok {
		return p, nil
	}
	if fallback != nil {
		if p, ok := fallback(name); ok {
			return p, nil
		}
	}
	return nil, fmt.Errorf("provider %q (registered: %v): %w", name, r.Names(), ErrUnknownProvider)
}

// Names lists the registered provider names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
