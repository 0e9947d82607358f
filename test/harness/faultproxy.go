package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Fault is what the FaultProxy does to one request.
type Fault string

// The faults a FaultProxy injects. FaultNone forwards the request untouched.
const (
	FaultNone Fault = "none"
	// FaultDelay holds the request for a random time up to FaultConfig.MaxDelay, then
	// forwards it; a client that gives up first gets nothing.
	FaultDelay Fault = "delay"
	// FaultReset reads the request and closes the connection with a TCP RST, without
	// forwarding it.
	FaultReset Fault = "reset"
	// FaultTruncate forwards the request and sends the response's status, headers
	// (Content-Length of the whole body) and only half of the body, then closes the
	// connection.
	FaultTruncate Fault = "truncate"
	// FaultStatus answers a 5xx status (500, 502, 503 or 504) without forwarding.
	FaultStatus Fault = "5xx"
)

// AllFaults are the fault kinds a FaultProxy chooses from when FaultConfig.Kinds is
// empty.
var AllFaults = []Fault{FaultDelay, FaultReset, FaultTruncate, FaultStatus}

// FaultConfig configures a FaultProxy.
type FaultConfig struct {
	// Seed makes the sequence of choices repeatable (for a given order of requests).
	Seed uint64
	// Rate is the share of requests, 0 to 1, that get a fault.
	Rate float64
	// Kinds are the faults chosen from, each equally likely; empty means AllFaults.
	Kinds []Fault
	// MaxDelay bounds FaultDelay's hold (default 500ms).
	MaxDelay time.Duration
	// Classify names a request for the per-key request counts (it gets the body, which
	// is still forwarded unchanged); nil counts every request under "".
	Classify func(r *http.Request, body []byte) string
}

// FaultProxy is an HTTP proxy in front of a component (moto, Vault) that injects
// faults into a seeded random share of the requests: delays, connection resets,
// truncated responses and 5xx answers. It counts requests by the key Classify gives
// and faults by kind, so a test can say how many faults it injected and bound the
// retries a client made.
type FaultProxy struct {
	// URL is the proxy's address, http://127.0.0.1:<port>.
	URL string

	srv      *httptest.Server
	target   *url.URL
	classify func(r *http.Request, body []byte) string
	maxDelay time.Duration
	client   *http.Client

	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	kinds    []Fault
	requests map[string]int
	faults   map[Fault]int
	byKey    map[string]map[Fault]int
}

// NewFaultProxy proxies to target on a loopback port until t ends.
func NewFaultProxy(t testing.TB, target string, cfg FaultConfig) *FaultProxy {
	t.Helper()
	p, err := newFaultProxy(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	p.URL = p.srv.URL
	return p
}

func newFaultProxy(target string, cfg FaultConfig) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fault proxy target %q: %w", target, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("fault proxy target %q: want http://host:port", target)
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 500 * time.Millisecond
	}
	if cfg.Classify == nil {
		cfg.Classify = func(*http.Request, []byte) string { return "" }
	}
	p := &FaultProxy{
		target:   u,
		classify: cfg.Classify,
		maxDelay: cfg.MaxDelay,
		// Its own transport: the proxy's connections to the backend are not the
		// client's, and a fault on one side must not leak into the other.
		client: &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		requests: map[string]int{},
		faults:   map[Fault]int{},
		byKey:    map[string]map[Fault]int{},
	}
	if err := p.set(cfg.Rate, cfg.Kinds); err != nil {
		return nil, err
	}
	return p, nil
}

// SetRate changes the share of requests that get a fault from now on; 0 stops faults.
func (p *FaultProxy) SetRate(rate float64) error {
	p.mu.Lock()
	kinds := p.kinds
	p.mu.Unlock()
	return p.set(rate, kinds)
}

func (p *FaultProxy) set(rate float64, kinds []Fault) error {
	if rate < 0 || rate > 1 {
		return fmt.Errorf("fault rate %v: must be between 0 and 1", rate)
	}
	if len(kinds) == 0 {
		kinds = AllFaults
	}
	for _, k := range kinds {
		switch k {
		case FaultDelay, FaultReset, FaultTruncate, FaultStatus:
		default:
			return fmt.Errorf("fault kind %q: want one of %v", k, AllFaults)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.kinds = rate, append([]Fault(nil), kinds...)
	return nil
}

// choose draws the fault of one request and counts it under key. The delay is drawn
// with it so that one seed gives one sequence.
func (p *FaultProxy) choose(key string) (Fault, time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[key]++
	fault := FaultNone
	if p.rate > 0 && p.rng.Float64() < p.rate {
		fault = p.kinds[p.rng.IntN(len(p.kinds))]
	}
	delay := time.Duration(p.rng.Int64N(int64(p.maxDelay) + 1))
	status := []int{500, 502, 503, 504}[p.rng.IntN(4)]
	p.faults[fault]++
	if p.byKey[key] == nil {
		p.byKey[key] = map[Fault]int{}
	}
	p.byKey[key][fault]++
	return fault, delay, status
}

// ServeHTTP applies the drawn fault to one request.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The client went away while sending; there is no one to answer.
		return
	}
	fault, delay, status := p.choose(p.classify(r, body))
	switch fault {
	case FaultReset:
		reset(w)
		return
	case FaultStatus:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "fault proxy: injected "+strconv.Itoa(status)+"\n")
		return
	case FaultDelay:
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		}
	}
	resp, err := p.forward(r.Context(), r, body)
	if err != nil {
		if r.Context().Err() == nil {
			http.Error(w, "fault proxy: backend: "+err.Error(), http.StatusBadGateway)
		}
		return
	}
	for k, vs := range resp.header {
		w.Header()[k] = vs
	}
	if fault == FaultTruncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
		if len(resp.body) == 0 {
			// Nothing to cut short: close before the status line instead.
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(resp.status)
		_, _ = w.Write(resp.body[:len(resp.body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// The server closes the connection without finishing the response.
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// forward sends the request to the target and reads the whole answer, so a truncated
// answer can be cut at a known point.
func (p *FaultProxy) forward(ctx context.Context, r *http.Request, body []byte) (*response, error) {
	u := *p.target
	u.Path = r.URL.Path
	u.RawPath = r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	// Signed AWS requests cover the Host header: keep the one the client signed.
	out.Host = r.Host
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	h := resp.Header.Clone()
	h.Del("Content-Length")
	return &response{status: resp.StatusCode, header: h, body: b}, nil
}

// reset closes the client's connection with a TCP RST: SO_LINGER 0 makes close send
// one instead of a FIN.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// CloseConnections closes every connection of the proxy, to its clients (in flight or
// idle) and to the target, so that a test counting a client's goroutines and open
// files does not count keep-alive connections that come and go.
func (p *FaultProxy) CloseConnections() {
	p.srv.CloseClientConnections()
	p.client.CloseIdleConnections()
}

// Requests is the number of requests of key so far.
func (p *FaultProxy) Requests(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[key]
}

// RequestsByKey copies the request counts by key.
func (p *FaultProxy) RequestsByKey() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.requests))
	for k, n := range p.requests {
		out[k] = n
	}
	return out
}

// Faults copies the counts by fault kind, FaultNone included.
func (p *FaultProxy) Faults() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Fault]int, len(p.faults))
	for k, n := range p.faults {
		out[k] = n
	}
	return out
}

// FaultsOf copies the counts by fault kind of the requests of key.
func (p *FaultProxy) FaultsOf(key string) map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[Fault]int{}
	for k, n := range p.byKey[key] {
		out[k] = n
	}
	return out
}

// Injected is the number of requests that got a fault.
func (p *FaultProxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.faults {
		if k != FaultNone {
			n += c
		}
	}
	return n
}

// Reset forgets every count; the random sequence goes on.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = map[string]int{}
	p.faults = map[Fault]int{}
	p.byKey = map[string]map[Fault]int{}
}
