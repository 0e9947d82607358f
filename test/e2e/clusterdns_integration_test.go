//go:build integration

package e2e

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// startNameProxy is an HTTP forward proxy on loopback that sends requests for the given
// in-cluster host:port names to local servers and refuses any other destination. The
// driver and sync processes get it as HTTP_PROXY, so the guide's class can keep its
// in-cluster Vault address (http://vault.vault-system:8200) as it is.
func startNameProxy(t *testing.T, names map[string]string) string {
	t.Helper()
	targets := map[string]*url.URL{}
	for name, target := range names {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("target of %s: %v", name, err)
		}
		targets[name] = u
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(targets[r.In.URL.Host])
		r.Out.Host = targets[r.In.URL.Host].Host
	}}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || targets[r.URL.Host] == nil {
			http.Error(w, "no such host here: "+r.URL.Host, http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + lis.Addr().String()
}
