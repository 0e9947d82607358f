package vault

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeVault is a Vault HTTP API on an httptest server: kubernetes login, token
// renewal, mount lookup, KV v1/v2 reads, a dynamic engine with leases. It counts what
// the backend asks, so tests assert calls, not timings.
type fakeVault struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	jwts       map[string]string // jwt → "namespace/sa"
	roles      map[string]map[string]bool
	tokens     map[string]string // token → "namespace/sa"
	kv1        map[string]map[string]any
	kv2        map[string][]map[string]any // path under the mount → versions (1-based)
	logins     int
	renewals   int
	reads      map[string]int // API path → count
	leases     []string
	issued     int
	leaseTTL   int
	leaseMax   int // seconds left in the lease's max TTL when renewed; 0: unlimited
	refuse     bool
	failStatus int // answer every read with this status when non-zero
	requests   []*http.Request
	bodies     map[string]map[string]any
}

func newFakeVault(t testing.TB) *fakeVault { return newFakeVaultWith(t, false) }

// newFakeVaultWith starts the fake over TLS (httptest's certificate) when useTLS.
func newFakeVaultWith(t testing.TB, useTLS bool) *fakeVault {
	t.Helper()
	f := &fakeVault{
		t:        t,
		jwts:     map[string]string{},
		roles:    map[string]map[string]bool{},
		tokens:   map[string]string{},
		kv1:      map[string]map[string]any{},
		kv2:      map[string][]map[string]any{},
		reads:    map[string]int{},
		bodies:   map[string]map[string]any{},
		leaseTTL: 3600,
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	// Refused handshakes are what the TLS tests provoke; they need no log line.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVault) addr() string { return f.srv.URL }

// allow makes jwt the token of identity and binds identity to role.
func (f *fakeVault) allow(role, jwt, identity string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jwts[jwt] = identity
	if f.roles[role] == nil {
		f.roles[role] = map[string]bool{}
	}
	f.roles[role][identity] = true
}

func (f *fakeVault) count(fn func(*fakeVault) int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(f)
}

func (f *fakeVault) revokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]string{}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func vaultErr(w http.ResponseWriter, status int, msg ...string) {
	if msg == nil {
		msg = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msg})
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	var body map[string]any
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&body)
	}
	if strings.HasPrefix(path, "auth/") && strings.HasSuffix(path, "/login") {
		f.logins++
		who, ok := f.jwts[fmt.Sprint(body["jwt"])]
		role := fmt.Sprint(body["role"])
		if !ok {
			vaultErr(w, http.StatusForbidden, "permission denied")
			return
		}
		if f.roles[role] == nil {
			vaultErr(w, http.StatusBadRequest, fmt.Sprintf("invalid role name %q", role))
			return
		}
		if !f.roles[role][who] {
			vaultErr(w, http.StatusForbidden, "service account name not authorized")
			return
		}
		token := fmt.Sprintf("tok-%d", f.logins)
		f.tokens[token] = who
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": token, "lease_duration": 3600, "renewable": true}})
		return
	}
	who, ok := f.tokens[r.Header.Get("X-Vault-Token")]
	if !ok {
		vaultErr(w, http.StatusForbidden, "permission denied")
		return
	}
	_ = who
	switch {
	case path == "auth/token/renew-self":
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": r.Header.Get("X-Vault-Token"), "lease_duration": 3600, "renewable": true}})
	case strings.HasPrefix(path, "sys/internal/ui/mounts/"):
		p := strings.TrimPrefix(path, "sys/internal/ui/mounts/")
		switch {
		case strings.HasPrefix(p, "kv2/"):
			writeJSON(w, 200, map[string]any{"data": map[string]any{"path": "kv2/", "type": "kv", "options": map[string]any{"version": "2"}}})
		case strings.HasPrefix(p, "kv1/"):
			writeJSON(w, 200, map[string]any{"data": map[string]any{"path": "kv1/", "type": "kv", "options": map[string]any{"version": "1"}}})
		case strings.HasPrefix(p, "database/"):
			writeJSON(w, 200, map[string]any{"data": map[string]any{"path": "database/", "type": "database"}})
		default:
			vaultErr(w, http.StatusForbidden, "permission denied")
		}
	case path == "sys/leases/renew":
		f.renewals++
		if f.refuse {
			vaultErr(w, http.StatusBadRequest, "lease not found")
			return
		}
		ttl := f.leaseTTL
		if f.leaseMax > 0 && f.leaseMax < ttl {
			ttl = f.leaseMax
		}
		writeJSON(w, 200, map[string]any{"lease_id": body["lease_id"], "lease_duration": ttl, "renewable": true})
	default:
		f.reads[path]++
		f.bodies[path] = body
		if f.failStatus != 0 {
			vaultErr(w, f.failStatus, "backend failure")
			return
		}
		f.read(w, r, path)
	}
}

func (f *fakeVault) read(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case strings.HasPrefix(path, "kv2/data/"):
		versions := f.kv2[strings.TrimPrefix(path, "kv2/data/")]
		if len(versions) == 0 {
			vaultErr(w, http.StatusNotFound)
			return
		}
		n := len(versions)
		if v := r.URL.Query().Get("version"); v != "" {
			fmt.Sscan(v, &n)
		}
		if n < 1 || n > len(versions) {
			vaultErr(w, http.StatusNotFound)
			return
		}
		writeJSON(w, 200, map[string]any{"data": map[string]any{"data": versions[n-1], "metadata": map[string]any{"version": n}}})
	case strings.HasPrefix(path, "kv1/"):
		data, ok := f.kv1[strings.TrimPrefix(path, "kv1/")]
		if !ok {
			vaultErr(w, http.StatusNotFound)
			return
		}
		writeJSON(w, 200, map[string]any{"data": data, "lease_duration": 2764800})
	case strings.HasPrefix(path, "database/creds/"):
		n := len(f.leases) + 1
		id := fmt.Sprintf("%s/lease-%d", path, n)
		f.leases = append(f.leases, id)
		writeJSON(w, 200, map[string]any{"lease_id": id, "lease_duration": f.leaseTTL, "renewable": true,
			"data": map[string]any{"username": fmt.Sprintf("user-%d", n), "password": fmt.Sprintf("pass-%d", n)}})
	case strings.HasPrefix(path, "pki/issue/"):
		f.issued++
		writeJSON(w, 200, map[string]any{"data": map[string]any{
			"certificate": fmt.Sprintf("cert-%d", f.issued),
			"expiration":  newClock().Now().Add(time.Hour).Unix(),
		}})
	case strings.HasPrefix(path, "empty/"):
		writeJSON(w, 200, map[string]any{})
	case strings.HasPrefix(path, "nocontent/"):
		w.WriteHeader(http.StatusNoContent)
	default:
		vaultErr(w, http.StatusNotFound)
	}
}
