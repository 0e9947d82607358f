//go:build integration

package reliability

import (
	"testing"
	"time"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// faultedPublishes is what a run of publishes through a faulting proxy left: outcomes,
// the process before and after, and how long the measured publishes took.
type faultedPublishes struct {
	out         *outcomes
	base, after procStats
	elapsed     time.Duration
}

// runFaultedPublishes publishes warmup volumes, samples the process, then publishes
// the measured ones and samples it again. The warm-up fills the connection pools and
// starts what runs once per process, so the baseline is the process at work, not the
// process before its first publish. volume makes the i-th volume (each its own pod).
func runFaultedPublishes(t *testing.T, fd *faultDriver, proxy *harness.FaultProxy, volume func(t *testing.T, i int) csiclient.Volume,
	want map[string]string, warmup, publishes int) faultedPublishes {
	t.Helper()
	if err := proxy.SetRate(faultRate); err != nil {
		t.Fatal(err)
	}
	vols := make([]csiclient.Volume, warmup+publishes)
	for i := range vols {
		vols[i] = volume(t, i)
	}
	warm := newOutcomes()
	runPublishes(warmup, faultWorkers, func(i int) { publishOnce(fd, vols[i], want, warm) })
	warm.report(t)
	r := faultedPublishes{base: quietSample(t, proxy), out: newOutcomes()}
	proxy.Reset()

	start := time.Now()
	runPublishes(publishes, faultWorkers, func(i int) { publishOnce(fd, vols[warmup+i], want, r.out) })
	r.elapsed = time.Since(start)
	r.out.report(t)
	r.after = checkNoGrowth(t, r.base, growthTolerance, proxy)
	return r
}

// logAndCheck reports the run under label and fails t when mounts were left or the run
// did not exercise every fault kind.
func (r faultedPublishes) logAndCheck(t *testing.T, label string, fd *faultDriver, proxy *harness.FaultProxy, publishes int, bounds string) {
	t.Helper()
	if left := tmpfsMountsUnder(t, fd.root); len(left) != 0 {
		t.Errorf("%d mounts left after every publish was unpublished or failed", len(left))
	}
	t.Logf("%s: %d publishes in %s at %d workers, %.0f%% fault rate: outcomes %s", label, publishes, r.elapsed.Round(time.Millisecond), faultWorkers, faultRate*100, r.out)
	t.Logf("%s: %s", label, faultSummary(proxy))
	t.Logf("%s: most requests of one publish: %s", label, bounds)
	t.Logf("%s: process %s before, %s after", label, r.base, r.after)
	t.Logf("%s: failures by cause: %s", label, r.out.causeSummary())
	for _, m := range r.out.samples() {
		t.Logf("%s: a failure: %s", label, m)
	}
	checkExercised(t, proxy, r.out, publishes)
}
