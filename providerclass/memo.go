package providerclass

import (
	"sync"

	"github.com/jmespath/go-jmespath"
	yaml "go.yaml.in/yaml/v3"
)

// Every publish, rotation tick and SecretSync pass plans its class again, and most of
// that cost is parsing the same objects YAML and compiling the same JMESPath
// expressions (go-jmespath builds its whole function table on every Compile). Both
// results depend on their input text alone and are only read afterwards — a compiled
// JMESPath is safe for concurrent use, and the planner never writes to a YAML node —
// so they are kept by that text and shared.

var (
	parsedLists = &memo[parsedList]{maxEntries: 256, maxBytes: 256 << 10}
	compiled    = &memo[compiledJMESPath]{maxEntries: 4096, maxBytes: 256 << 10}
)

type parsedList struct {
	nodes []*yaml.Node
	err   error
}

type compiledJMESPath struct {
	expr *jmespath.JMESPath
	err  error
}

// memo keeps the results of a pure function of a string. It is bounded by entries and
// by the bytes of the keys (a parsed tree is some tens of times its text): when either
// bound would be passed it starts afresh, so a node with more distinct classes than
// fit pays what it paid without the memo, and never more memory than the bounds. A key
// of more than a sixteenth of the byte bound is never kept.
type memo[V any] struct {
	maxEntries, maxBytes int

	mu      sync.Mutex
	entries map[string]V
	bytes   int
}

// get returns the kept result for key, or computes and keeps it.
func (m *memo[V]) get(key string, compute func() V) V {
	m.mu.Lock()
	v, ok := m.entries[key]
	m.mu.Unlock()
	if ok {
		return v
	}
	v = compute()
	if len(key) > m.maxBytes/16 {
		return v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[key]; ok {
		return v
	}
	if m.entries == nil || len(m.entries) >= m.maxEntries || m.bytes+len(key) > m.maxBytes {
		m.entries, m.bytes = make(map[string]V), 0
	}
	m.entries[key] = v
	m.bytes += len(key)
	return v
}
