package harness

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// CountingProxy is a reverse proxy in front of a component (moto, Vault) that counts the
// requests the component received, by a key the test chooses, so a test can say how
// many logins and reads really reached the backend.
type CountingProxy struct {
	URL string

	mu     sync.Mutex
	counts map[string]int
}

// NewCountingProxy proxies to target on a loopback port until t ends; classify names
// each request (it gets the body, which the proxy still forwards unchanged).
func NewCountingProxy(t testing.TB, target string, classify func(r *http.Request, body []byte) string) *CountingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &CountingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		key := classify(r, body)
		p.mu.Lock()
		p.counts[key]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Count is the number of requests of key so far.
func (p *CountingProxy) Count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[key]
}

// Take returns the counts since the last Take and starts counting afresh.
func (p *CountingProxy) Take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.counts
	p.counts = map[string]int{}
	return out
}

// AWSAction names an AWS API request by its action: the X-Amz-Target operation of JSON
// protocols (Secrets Manager, SSM) or the Action of query protocols (STS).
func AWSAction(r *http.Request, body []byte) string {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		return target[strings.Index(target, ".")+1:]
	}
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		return form.Get("Action")
	}
	return "other"
}

// MethodPath names a request by its method and path, e.g. "GET /v1/cnpg/data/x".
func MethodPath(r *http.Request, _ []byte) string { return r.Method + " " + r.URL.Path }
