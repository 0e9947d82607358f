package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// clusterDNS is an HTTP forward proxy on loopback that resolves the cluster names the
// guide's classes use to the local servers, and refuses every other destination, so a
// process given it as HTTP_PROXY reaches nothing else through it.
type clusterDNS struct {
	URL   string
	srv   *http.Server
	names map[string]*url.URL // host:port → local server
}

func startClusterDNS(names map[string]string) (*clusterDNS, error) {
	c := &clusterDNS{names: map[string]*url.URL{}}
	for name, target := range names {
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("target of %s: %w", name, err)
		}
		c.names[name] = u
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the cluster DNS proxy: %w", err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		target := c.names[pr.In.URL.Host]
		pr.SetURL(target)
		pr.Out.Host = target.Host
	}}
	c.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || c.names[r.URL.Host] == nil {
			http.Error(w, "the demo's cluster DNS stand-in knows no "+r.URL.Host, http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = c.srv.Serve(lis) }()
	c.URL = "http://" + lis.Addr().String()
	return c, nil
}

func (c *clusterDNS) Close() error { return c.srv.Close() }
