package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunnerFatalUnwindsAndCleansUp: a harness Fatal stops the step, marks the run
// failed, and every cleanup still runs, last first, even after one that panics.
func TestRunnerFatalUnwindsAndCleansUp(t *testing.T) {
	var out bytes.Buffer
	r := newRunner(&out, t.TempDir())
	var order []string
	r.Cleanup(func() { order = append(order, "first") })
	r.Cleanup(func() { panic("broken cleanup") })
	r.Cleanup(func() { order = append(order, "last") })
	reached := false
	func() {
		defer func() {
			if _, ok := recover().(stepFailed); !ok {
				t.Error("Fatalf did not unwind with stepFailed")
			}
		}()
		r.Fatalf("component %s failed", "x")
		reached = true
	}()
	if reached {
		t.Error("the step went on after Fatalf")
	}
	if !r.Failed() {
		t.Error("the run is not marked failed")
	}
	r.runCleanups()
	if strings.Join(order, ",") != "last,first" {
		t.Errorf("cleanups ran in order %v, want last,first", order)
	}
	for _, want := range []string{"ERROR: component x failed", "ERROR: cleanup: broken cleanup"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunnerSkipIsAFailure: a missing component skips a test but fails the demo.
func TestRunnerSkipIsAFailure(t *testing.T) {
	r := newRunner(io.Discard, t.TempDir())
	func() {
		defer func() { _ = recover() }()
		r.Skipf("moto is not installed")
	}()
	if !r.Failed() {
		t.Error("a skipped component did not fail the run")
	}
}

func TestRunnerSetenvRestores(t *testing.T) {
	const key = "SECRETMOUNT_DEMO_RUNNER_TEST"
	t.Setenv(key, "before")
	r := newRunner(io.Discard, t.TempDir())
	r.Setenv(key, "during")
	if os.Getenv(key) != "during" {
		t.Fatal("Setenv did not set")
	}
	r.runCleanups()
	if got := os.Getenv(key); got != "before" {
		t.Errorf("after cleanup %s = %q, want before", key, got)
	}
}

// TestClusterDNSProxy: the stand-in answers for the names it knows and refuses the rest,
// CONNECT included, so nothing else is reachable through it.
func TestClusterDNSProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "vault at "+r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	dns, err := startClusterDNS(map[string]string{"vault.vault-system:8200": backend.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	proxyURL, err := url.Parse(dns.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	tests := []struct {
		url      string
		wantCode int
		wantBody string
	}{
		{"http://vault.vault-system:8200/v1/sys/health", http.StatusOK, "vault at /v1/sys/health"},
		{"http://vault.vault-system:8201/v1/sys/health", http.StatusBadGateway, "knows no vault.vault-system:8201"},
		{"http://example.com/", http.StatusBadGateway, "knows no example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			resp, err := client.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	// HTTPS through the proxy (CONNECT) is refused.
	if _, err := client.Get("https://vault.vault-system:8200/"); err == nil {
		t.Error("CONNECT through the stand-in succeeded")
	}
}

// TestDemoFailsWithoutItsBinary: a step that fails makes the exit code 1 and says so,
// before anything is started.
func TestDemoFailsWithoutItsBinary(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	code := demo(&out, options{secretmount: dir + "/absent/secretmount", workDir: dir, interval: time.Second})
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(out.String(), "DEMO FAILED") || strings.Contains(out.String(), "[ 1]") {
		t.Errorf("output:\n%s\nwant DEMO FAILED before any step", out.String())
	}
}
