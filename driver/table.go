package driver

import (
	"sort"
	"sync"
	"time"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// volume is a table entry: the published volume and, in memory only, what a refresh needs
// that must never reach the disk (the tokens kubelet sent).
type volume struct {
	PublishedVolume
	identity provider.Identity
	gid      int
	attrs    map[string]string
	secrets  map[string]string
	// restored marks an entry rebuilt from its record after a restart, not yet
	// republished by kubelet.
	restored bool
}

// mountRequest is what an external provider is told about the volume.
func (v *volume) mountRequest() provider.MountRequest {
	return provider.MountRequest{
		Attributes:      v.attrs,
		Secrets:         v.secrets,
		TargetPath:      v.TargetPath,
		CurrentVersions: versionMap(v.Versions),
	}
}

// liveToken reports whether the volume holds a token that has not expired, i.e. whether
// a refresh can authenticate as the pod. After a restart there is none until kubelet's
// next republish brings fresh ones.
func (v *volume) liveToken(now time.Time) bool {
	for _, t := range v.identity.Tokens {
		if t.Token != "" && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(now)) {
			return true
		}
	}
	return false
}

// table is the published-volume table, keyed by target path (unique on a node).
type table struct {
	mu        sync.RWMutex
	volumes   map[string]*volume
	observers []Observer
}

func newTable() *table { return &table{volumes: map[string]*volume{}} }

func (t *table) get(target string) (*volume, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.volumes[target]
	if !ok {
		return nil, false
	}
	c := *v
	return &c, true
}

func (t *table) put(v *volume) {
	c := *v
	t.mu.Lock()
	defer t.mu.Unlock()
	t.volumes[v.TargetPath] = &c
}

func (t *table) remove(target string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.volumes, target)
}

// list returns copies of the entries, sorted by target path.
func (t *table) list() []*volume {
	t.mu.RLock()
	out := make([]*volume, 0, len(t.volumes))
	for _, v := range t.volumes {
		c := *v
		out = append(out, &c)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].TargetPath < out[j].TargetPath })
	return out
}

func (t *table) addObserver(o Observer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observers = append(t.observers, o)
}

func (t *table) notifyPublished(v PublishedVolume, plan *providerclass.Plan, files []providerclass.File) {
	t.mu.RLock()
	obs := append([]Observer(nil), t.observers...)
	t.mu.RUnlock()
	for _, o := range obs {
		o.Published(v, plan, files)
	}
}

func (t *table) notifyUnpublished(v PublishedVolume) {
	t.mu.RLock()
	obs := append([]Observer(nil), t.observers...)
	t.mu.RUnlock()
	for _, o := range obs {
		o.Unpublished(v)
	}
}

// keyedMutex serialises work on one target path while letting different volumes proceed
// in parallel (100 volumes of one pod are published at once by kubelet).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
