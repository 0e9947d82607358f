package app

import (
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRuntimeGCPercent(t *testing.T) {
	for _, tc := range []struct {
		name string
		gogc *string
		want int
	}{
		{"GOGC unset: the command's target", nil, 50},
		{"GOGC set: the runtime's reading of it stays", ptr("100"), 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", "") // restores the variable when the test ends
			if tc.gogc == nil {
				os.Unsetenv("GOGC")
			} else {
				t.Setenv("GOGC", *tc.gogc)
			}
			before := debug.SetGCPercent(100)
			t.Cleanup(func() { debug.SetGCPercent(before) })
			stop, err := (&runtimeOptions{}).start(50)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent = %d, want %d", got, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestProfilingEndpoint(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveProfiling(lis)
	t.Cleanup(stop)
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile: total",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/cmdline":           "",
		"/metrics":                       "404 page not found",
	} {
		resp, err := http.Get("http://" + lis.Addr().String() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want it to contain %q", path, resp.StatusCode, truncate(string(body)), want)
		}
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
