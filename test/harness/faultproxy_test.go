package harness

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// echoBackend answers every request with 201, a header and a body naming what it got,
// and counts the requests that reached it.
func echoBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", "echo")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s?%s host=%s auth=%s body=%s", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get("Authorization"), body)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// oneShot is a client that opens a new connection per request, so the transport never
// replays a request on its own and every request reaches the proxy once.
func oneShot(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func post(c *http.Client, url, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/a%2Fb/c?x=1", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Host = "signed.example"
	req.Header.Set("Authorization", "sig")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestFaultProxyKinds(t *testing.T) {
	const want = "POST /v1/a/b/c?x=1 host=signed.example auth=sig body=payload"
	tests := []struct {
		name      string
		kind      Fault
		rate      float64
		reachesUp bool
		check     func(t *testing.T, status int, body string, err error)
	}{
		{name: "no fault forwards exactly", kind: FaultReset, rate: 0, reachesUp: true, check: func(t *testing.T, status int, body string, err error) {
			if err != nil || status != http.StatusCreated || body != want {
				t.Errorf("got %d %q %v, want 201 %q", status, body, err, want)
			}
		}},
		{name: "delay then forward", kind: FaultDelay, rate: 1, reachesUp: true, check: func(t *testing.T, status int, body string, err error) {
			if err != nil || status != http.StatusCreated || body != want {
				t.Errorf("got %d %q %v, want 201 %q", status, body, err, want)
			}
		}},
		{name: "reset", kind: FaultReset, rate: 1, check: func(t *testing.T, status int, body string, err error) {
			// SO_LINGER 0: the client reads a reset, not an orderly close.
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("got %d %q %v, want a connection reset", status, body, err)
			}
		}},
		{name: "5xx", kind: FaultStatus, rate: 1, check: func(t *testing.T, status int, body string, err error) {
			if err != nil || status < 500 || status == 501 || status > 504 || !strings.Contains(body, "injected") {
				t.Errorf("got %d %q %v, want an injected 500, 502, 503 or 504", status, body, err)
			}
		}},
		{name: "truncate", kind: FaultTruncate, rate: 1, reachesUp: true, check: func(t *testing.T, status int, body string, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || status != http.StatusCreated || body != want[:len(want)/2] {
				t.Errorf("got %d %q %v, want 201, half the body and an unexpected EOF", status, body, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, hits := echoBackend(t)
			p := NewFaultProxy(t, up.URL, FaultConfig{Seed: 1, Rate: tc.rate, Kinds: []Fault{tc.kind}, MaxDelay: 5 * time.Millisecond,
				Classify: func(r *http.Request, body []byte) string { return r.Method + " " + string(body) }})
			status, body, err := post(oneShot(t), p.URL, "payload")
			tc.check(t, status, body, err)
			if got, want := hits.Load() == 1, tc.reachesUp; got != want {
				t.Errorf("backend reached %d times, want reached=%v", hits.Load(), want)
			}
			wantFault := tc.kind
			if tc.rate == 0 {
				wantFault = FaultNone
			}
			if n := p.FaultsOf("POST payload")[wantFault]; n != 1 || p.Requests("POST payload") != 1 {
				t.Errorf("counted %v of %d requests, want one %s", p.FaultsOf("POST payload"), p.Requests("POST payload"), wantFault)
			}
		})
	}
}

// TestFaultProxyRateAndSeed: the share of faults follows the rate, every kind is drawn,
// and one seed gives one sequence.
func TestFaultProxyRateAndSeed(t *testing.T) {
	up, _ := echoBackend(t)
	const n = 500
	run := func(seed uint64) (*FaultProxy, string) {
		p := NewFaultProxy(t, up.URL, FaultConfig{Seed: seed, Rate: 0.2, Kinds: []Fault{FaultStatus, FaultDelay}, MaxDelay: time.Millisecond,
			Classify: func(_ *http.Request, body []byte) string { return string(body) }})
		// Neither kind drops a connection, so connections are reused and a POST is
		// never replayed by the transport.
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var seq strings.Builder
		for i := range n {
			key := fmt.Sprint(i)
			if _, _, err := post(c, p.URL, key); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			for f := range p.FaultsOf(key) {
				seq.WriteString(string(f)[:1])
			}
		}
		return p, seq.String()
	}
	p1, seq1 := run(7)
	_, seq2 := run(7)
	_, seq3 := run(8)
	if seq1 != seq2 {
		t.Error("the same seed gave two fault sequences")
	}
	if seq1 == seq3 {
		t.Error("two seeds gave the same fault sequence")
	}
	f := p1.Faults()
	injected := f[FaultStatus] + f[FaultDelay]
	// 500 draws at 0.2: 100 expected, standard deviation about 9.
	if injected < 60 || injected > 140 || f[FaultStatus] == 0 || f[FaultDelay] == 0 || f[FaultNone]+injected != n {
		t.Errorf("faults %v over %d requests at rate 0.2", f, n)
	}
	if p1.Injected() != injected {
		t.Errorf("Injected() = %d, want %d", p1.Injected(), injected)
	}
	if err := p1.SetRate(0); err != nil {
		t.Fatal(err)
	}
	p1.Reset()
	c := oneShot(t)
	for i := range 50 {
		if status, _, err := post(c, p1.URL, "after"); err != nil || status != http.StatusCreated {
			t.Fatalf("request %d after SetRate(0): %d %v", i, status, err)
		}
	}
	if p1.Injected() != 0 || p1.Requests("after") != 50 {
		t.Errorf("after SetRate(0) and Reset: %v, %d requests", p1.Faults(), p1.Requests("after"))
	}
}

func TestFaultProxyConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		target string
		cfg    FaultConfig
		want   string
	}{
		{"rate above one", "http://127.0.0.1:1", FaultConfig{Rate: 1.5}, "fault rate"},
		{"negative rate", "http://127.0.0.1:1", FaultConfig{Rate: -0.1}, "fault rate"},
		{"unknown kind", "http://127.0.0.1:1", FaultConfig{Kinds: []Fault{"melt"}}, `fault kind "melt"`},
		{"not http", "unix:///x", FaultConfig{}, "want http://host:port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newFaultProxy(tc.target, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestFaultProxyCloseConnections: an idle keep-alive connection of a client is closed,
// and the client's next request still gets through on a new one.
func TestFaultProxyCloseConnections(t *testing.T) {
	up, _ := echoBackend(t)
	p := NewFaultProxy(t, up.URL, FaultConfig{})
	var conns atomic.Int64
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	do := func() {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, p.URL+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if !info.Reused {
				conns.Add(1)
			}
		}}
		resp, err := c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do()
	do()
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for two requests before CloseConnections, want 1 kept alive", n)
	}
	p.CloseConnections()
	// The client learns of the close when its connection reads EOF; give it a moment
	// by retrying until a new connection is used (bounded).
	for i := 0; conns.Load() == 1; i++ {
		if i == 100 {
			t.Fatal("the client kept using its connection after CloseConnections")
		}
		time.Sleep(10 * time.Millisecond)
		do()
	}
	if p.Requests("") < 3 {
		t.Errorf("%d requests counted, want at least 3", p.Requests(""))
	}
}
