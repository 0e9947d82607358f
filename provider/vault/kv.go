package vault

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	vaultapi "github.com/hashicorp/vault/api"
)

// mountInfo is what sys/internal/ui/mounts says about the mount a path is on.
type mountInfo struct {
	path string // with trailing slash, e.g. "cnpg/"
	kv2  bool
}

// mountCache remembers mounts per (address, namespace, mount path). Mount types are
// not secret, and every read is still authorised by Vault, so identities share it.
type mountCache struct {
	mu      sync.Mutex
	entries map[mountKey]mountInfo
}

type mountKey struct{ scope, path string }

func (c *mountCache) lookup(scope, path string) (mountInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, found := mountInfo{}, false
	for k, m := range c.entries {
		if k.scope == scope && strings.HasPrefix(path+"/", k.path) && len(k.path) > len(best.path) {
			best, found = m, true
		}
	}
	return best, found
}

func (c *mountCache) put(scope string, m mountInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[mountKey{scope, m.path}] = m
}

// mount finds the mount of path. ok is false when Vault would not say (no access to
// the lookup, or an old server): the path is then read as written. An error means the
// lookup could not be made (Vault unreachable, a 5xx or 429, an answer cut short):
// reading the path as written would then turn an outage into "not found" for a KV v2
// path without its data/ segment.
func (s *session) mount(ctx context.Context, token, path string) (mountInfo, bool, error) {
	scope := s.params.Address + "\x00" + s.params.Namespace
	if m, ok := s.b.mounts.lookup(scope, path); ok {
		return m, true, nil
	}
	r := s.client.NewRequest("GET", "/v1/sys/internal/ui/mounts/"+path)
	r.ClientToken = token
	secret, err := s.do(ctx, r)
	if err != nil {
		var re *vaultapi.ResponseError
		if errors.As(err, &re) && re.StatusCode < 500 && re.StatusCode != http.StatusTooManyRequests {
			return mountInfo{}, false, nil
		}
		return mountInfo{}, false, err
	}
	if secret == nil || secret.Data == nil {
		return mountInfo{}, false, nil
	}
	mp, _ := secret.Data["path"].(string)
	if mp == "" || !strings.HasPrefix(path+"/", mp) {
		return mountInfo{}, false, nil
	}
	m := mountInfo{path: mp}
	if typ, _ := secret.Data["type"].(string); typ == "kv" || typ == "generic" {
		if opts, ok := secret.Data["options"].(map[string]any); ok {
			v, _ := opts["version"].(string)
			m.kv2 = v == "2"
		}
	}
	s.b.mounts.put(scope, m)
	return m, true, nil
}

// kv2DataPath is the API path of a KV v2 secret: "data/" is inserted after the mount
// unless the path already has it, so "cnpg/x" and "cnpg/data/x" read the same secret.
func kv2DataPath(m mountInfo, path string) string {
	rel := strings.TrimPrefix(path+"/", m.path)
	rel = strings.TrimSuffix(rel, "/")
	if rel == "data" || strings.HasPrefix(rel, "data/") {
		return path
	}
	return m.path + "data/" + rel
}
