//go:build integration

package reliability

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/secretmount/secretmount/test/harness"
)

// procStats are the goroutines and open files of this process, which runs the driver.
type procStats struct{ goroutines, fds int }

func (s procStats) String() string {
	return fmt.Sprintf("%d goroutines, %d open fds", s.goroutines, s.fds)
}

func sampleProc(t *testing.T) procStats {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return procStats{goroutines: runtime.NumGoroutine(), fds: len(entries)}
}

// quietSample closes the proxies' connections, so idle keep-alive connections (a socket
// on each end and a few goroutines each) are not counted, and samples until two samples
// 100ms apart agree, for at most 5 s.
func quietSample(t *testing.T, proxies ...*harness.FaultProxy) procStats {
	t.Helper()
	for _, p := range proxies {
		p.CloseConnections()
	}
	s := sampleProc(t)
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		next := sampleProc(t)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// checkNoGrowth fails t when the process, quiet again, has more than tolerance
// goroutines or fds above base. Goroutines of closed connections take a moment to end,
// so it samples for up to 15 s before it gives up.
func checkNoGrowth(t *testing.T, base procStats, tolerance int, proxies ...*harness.FaultProxy) procStats {
	t.Helper()
	var after procStats
	for range 15 {
		after = quietSample(t, proxies...)
		if after.goroutines <= base.goroutines+tolerance && after.fds <= base.fds+tolerance {
			return after
		}
	}
	t.Errorf("growth: %s before the run, %s after it (tolerance %d)", base, after, tolerance)
	return after
}
