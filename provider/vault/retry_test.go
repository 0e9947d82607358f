package vault

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/secretmount/secretmount/provider"
)

// cutter sits in front of the fake and cuts chosen answers short: status, headers with
// the whole body's Content-Length, half the body, then a closed connection. It counts
// requests by "METHOD path".
type cutter struct {
	fake *fakeVault
	srv  *httptest.Server

	mu   sync.Mutex
	left map[string]int // "METHOD path" → answers still to cut; negative: every answer
	seen map[string]int
}

func newCutter(t *testing.T, fake *fakeVault, left map[string]int) *cutter {
	t.Helper()
	c := &cutter{fake: fake, left: left, seen: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cutter) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	c.fake.serve(rec, r)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	if !c.take(r.Method+" "+r.URL.Path) || rec.Body.Len() == 0 {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func (c *cutter) take(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[key]++
	n := c.left[key]
	if n == 0 {
		return false
	}
	if n > 0 {
		c.left[key] = n - 1
	}
	return true
}

func (c *cutter) requests(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[key]
}

// TestTruncatedAnswers: a GET or login answer cut short is retried within MaxRetries:
// cut once, the fetch succeeds with one more request; cut every time, it fails
// Unavailable after exactly MaxRetries+1 requests. A write that issues something is
// never sent again for a lost answer.
func TestTruncatedAnswers(t *testing.T) {
	const (
		login  = "POST /v1/auth/kubernetes/login"
		mounts = "GET /v1/sys/internal/ui/mounts/kv2/db"
		read   = "GET /v1/kv2/data/db"
		issue  = "POST /v1/database/creds/app"
		kvObj  = `- {objectName: pw, secretPath: kv2/db, secretKey: password}`
		dbObj  = `- {objectName: pw, secretPath: database/creds/app, secretKey: password, method: POST}`
	)
	const retries = 2
	tests := []struct {
		name    string
		objects string
		cut     map[string]int
		key     string // the requests counted
		want    int
		wantErr error
	}{
		{"read cut once", kvObj, map[string]int{read: 1}, read, 2, nil},
		{"read cut twice", kvObj, map[string]int{read: 2}, read, 3, nil},
		{"login cut once", kvObj, map[string]int{login: 1}, login, 2, nil},
		{"mount lookup cut once", kvObj, map[string]int{mounts: 1}, mounts, 2, nil},
		{"read always cut", kvObj, map[string]int{read: -1}, read, retries + 1, provider.ErrUnavailable},
		{"mount lookup always cut", kvObj, map[string]int{mounts: -1}, mounts, retries + 1, provider.ErrUnavailable},
		{"login always cut", kvObj, map[string]int{login: -1}, login, retries + 1, provider.ErrUnavailable},
		{"issuing write cut once", dbObj, map[string]int{issue: 1}, issue, 1, provider.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVault(t)
			f.allow("app", "jwt-a", "apps/app-sa")
			f.kv2["db"] = []map[string]any{{"password": "cut-short-value-1234567890"}}
			front := newCutter(t, f, tc.cut)
			b := newTestBackend(t, f, newClock(), func(o *Options) {
				o.DefaultAddress = front.srv.URL
				o.MaxRetries = retries
			})
			got, err := b.Fetch(context.Background(), plan(t, tc.objects), identity("apps", "app-sa", "jwt-a"))
			if n := front.requests(tc.key); n != tc.want {
				t.Errorf("%s requests = %d, want %d", tc.key, n, tc.want)
			}
			if tc.wantErr != nil {
				assertKind(t, err, tc.wantErr)
				for _, v := range []string{"cut-short-value", "pass-1", "tok-"} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error quotes a value or token: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if string(got[0].Bytes) != "cut-short-value-1234567890" {
				t.Errorf("content = %q, want the stored value", got[0].Bytes)
			}
		})
	}
}
