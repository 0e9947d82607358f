//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secretmount/secretmount/test/csiclient"
)

// sizes are the counts of one run: full for `make bench`, quick for BENCH_QUICK=1.
type sizes struct {
	latency, cold, burst, memory int
}

func benchSizes() (sizes, string) {
	if os.Getenv("BENCH_QUICK") != "" {
		return sizes{latency: 20, cold: 10, burst: 100, memory: 50}, "quick"
	}
	return sizes{latency: 200, cold: 50, burst: 100, memory: 500}, "full"
}

// TestSideBySide runs the scenarios against both systems and prints the table.
func TestSideBySide(t *testing.T) {
	n, mode := benchSizes()
	sas := []string{"seq", "mem", "b1-ours", "b1-upstream"}
	coldSAs := func(sys string) []string {
		var out []string
		for i := range n.cold {
			out = append(out, fmt.Sprintf("cold-%s-%d", sys, i))
		}
		return out
	}
	for _, s := range []string{"ours", "upstream"} {
		for i := range 10 {
			sas = append(sas, fmt.Sprintf("b10-%s-%d", s, i))
		}
		sas = append(sas, coldSAs(s)...)
	}
	e := setup(t, sas)
	tab := &table{}
	tab.note("run: %s (latency N=%d per class, cold N=%d, burst %d concurrent, memory after %d volumes)", mode, n.latency, n.cold, n.burst, n.memory)
	tab.note("ours: %s", e.ours.note)
	tab.note("upstream: %s", e.up.note)
	tab.note("both: one new pod per publish; latency after one uncounted warm-up publish per class; backend requests counted at a proxy in front of moto;")
	tab.note("      the upstream side's STS and Secrets Manager figures are `secretmount provider`'s, not the upstream AWS provider's; the fake provider runs in the bench process and is in no figure")
	tab.note("RSS is /proc/PID/status VmRSS; RssAnon (heap, stacks) and RssFile (resident pages of mapped files, mostly each binary's own) are its parts, so a large binary does not pass for heap")

	idle := map[string][]figures{}
	for _, s := range []*system{e.ours, e.up} {
		idle[s.name] = measureAll(t, s)
	}

	// Scenario 1: sequential mount latency, one new pod per mount; cold mounts are each
	// by a ServiceAccount not seen before, so nothing fetched earlier can be reused.
	for _, c := range []struct {
		class, label string
		cold         bool
	}{
		{classCNPG, "guide's class, moto (2 objects, 6 files)", false},
		{classTen, "10 objects, moto", false},
		{classTenFake, "10 objects, ~0-latency fake provider", false},
		{classCNPG, fmt.Sprintf("guide's class, moto, cold (new ServiceAccount each, N=%d)", n.cold), true},
	} {
		count := n.latency
		if c.cold {
			count = n.cold
		}
		res := map[string][]time.Duration{}
		cpu := map[string]time.Duration{}
		requests := map[string]int{}
		for _, s := range []*system{e.ours, e.up} {
			warm := e.volumes(t, 1, c.class, "seq")
			publishAll(t, s, warm, 1)
			sas := []string{"seq"}
			if c.cold {
				sas = coldSAs(s.name)
			}
			vols := e.volumes(t, count, c.class, sas...)
			e.proxy.Take()
			cpu0 := cpuAll(t, s)
			for _, v := range vols {
				start := time.Now()
				publishOne(t, s, v)
				res[s.name] = append(res[s.name], time.Since(start))
			}
			cpu[s.name] = cpuAll(t, s) - cpu0
			ids, fetches := identityAndFetches(e.proxy.Take())
			requests[s.name] = ids + fetches
			unpublishAll(t, s, append(warm, vols...))
		}
		for _, q := range []float64{0.50, 0.99} {
			tab.row(fmt.Sprintf("1 mount latency p%d ms: %s", int(q*100), c.label),
				ms(quantile(res["ours"], q)), ms(quantile(res["upstream"], q)))
		}
		tab.row("1 CPU ms per mount, node processes: "+c.label,
			ms(cpu["ours"])/float64(count), ms(cpu["upstream"])/float64(count))
		if c.class != classTenFake {
			tab.row("1 backend requests per mount: "+c.label,
				float64(requests["ours"])/float64(count), float64(requests["upstream"])/float64(count))
		}
	}
	e.proxy.Take()

	// Scenario 2: bursts of concurrent publishes of the guide's class, one new pod each.
	for _, b := range []struct {
		label string
		sas   func(sys string) []string
	}{
		{"one ServiceAccount", func(sys string) []string { return []string{"b1-" + sys} }},
		{"10 ServiceAccounts", func(sys string) []string {
			var out []string
			for i := range 10 {
				out = append(out, fmt.Sprintf("b10-%s-%d", sys, i))
			}
			return out
		}},
	} {
		wall := map[string]time.Duration{}
		ids, fetches := map[string]int{}, map[string]int{}
		for _, s := range []*system{e.ours, e.up} {
			vols := e.volumes(t, n.burst, classCNPG, b.sas(s.name)...)
			e.proxy.Take()
			start := time.Now()
			publishAll(t, s, vols, len(vols))
			wall[s.name] = time.Since(start)
			ids[s.name], fetches[s.name] = identityAndFetches(e.proxy.Take())
			unpublishAll(t, s, vols)
		}
		tab.row(fmt.Sprintf("2 burst %d publishes, %s: wall ms", n.burst, b.label), ms(wall["ours"]), ms(wall["upstream"]))
		tab.row(fmt.Sprintf("2 burst %d publishes, %s: STS exchanges", n.burst, b.label), float64(ids["ours"]), float64(ids["upstream"]))
		tab.row(fmt.Sprintf("2 burst %d publishes, %s: Secrets Manager requests", n.burst, b.label), float64(fetches["ours"]), float64(fetches["upstream"]))
	}
	onePodManyVolumes(t, e, tab)

	// Scenario 4: memory, threads, descriptors idle and with N volumes published.
	after := map[string][]figures{}
	for _, s := range []*system{e.ours, e.up} {
		vols := e.volumes(t, n.memory, classCNPG, "mem")
		publishAll(t, s, vols, 8)
		after[s.name] = measureAll(t, s)
		unpublishAll(t, s, vols)
	}
	for _, m := range []struct {
		label string
		at    map[string][]figures
	}{{"idle", idle}, {fmt.Sprintf("after %d volumes", n.memory), after}} {
		o, u := m.at["ours"], m.at["upstream"]
		tab.row("4 RSS MiB, driver, "+m.label, mib(o[0].rssKiB), mib(u[0].rssKiB))
		tab.row("4 RSS MiB, all node processes, "+m.label, mib(sum(o, rss)), mib(sum(u, rss)))
		tab.row("4 RssAnon MiB, driver, "+m.label, mib(o[0].rssAnonKiB), mib(u[0].rssAnonKiB))
		tab.row("4 RssFile MiB, driver, "+m.label, mib(o[0].rssFileKiB), mib(u[0].rssFileKiB))
		tab.row("4 RssAnon MiB, all node processes, "+m.label, mib(sum(o, rssAnon)), mib(sum(u, rssAnon)))
		tab.row("4 RssFile MiB, all node processes, "+m.label, mib(sum(o, rssFile)), mib(sum(u, rssFile)))
		tab.row("4 goroutines, driver, "+m.label, float64(o[0].goroutines), float64(u[0].goroutines))
		tab.row("4 OS threads, all node processes, "+m.label, float64(sum(o, threads)), float64(sum(u, threads)))
		tab.row("4 open fds, all node processes, "+m.label, float64(sum(o, fds)), float64(sum(u, fds)))
	}
	tab.row("unpublish calls retried (busy target)", float64(e.ours.unpublishRetries.Load()), float64(e.up.unpublishRetries.Load()))
	tab.print(os.Stdout)
}

func rss(f figures) int     { return f.rssKiB }
func rssAnon(f figures) int { return f.rssAnonKiB }
func rssFile(f figures) int { return f.rssFileKiB }
func threads(f figures) int { return f.threads }
func fds(f figures) int     { return f.fds }

func sum(fs []figures, get func(figures) int) int {
	total := 0
	for _, f := range fs {
		total += get(f)
	}
	return total
}

// cpuAll is the CPU time all of s's processes have used so far.
func cpuAll(t *testing.T, s *system) time.Duration {
	t.Helper()
	var total time.Duration
	for _, p := range s.procs {
		total += cpuTime(t, p)
	}
	return total
}

func measureAll(t *testing.T, s *system) []figures {
	t.Helper()
	out := make([]figures, len(s.procs))
	for i, p := range s.procs {
		out[i] = measure(t, p)
	}
	return out
}

func mib(kib int) float64 { return float64(kib) / 1024 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s)) + 0.5)
	if i >= len(s) {
		i = len(s) - 1
	}
	if i > 0 && q*float64(len(s)) <= float64(i) {
		i--
	}
	return s[i]
}

func publishOne(t *testing.T, s *system, v csiclient.Volume) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.csi.Publish(ctx, v); err != nil {
		t.Fatalf("%s: NodePublishVolume of class %s for pod %s: %v", s.name, v.Class, v.Pod.Name, err)
	}
}

// publishAll publishes vols with at most par calls in flight and fails on any error.
func publishAll(t *testing.T, s *system, vols []csiclient.Volume, par int) {
	t.Helper()
	each(t, s, vols, par, "NodePublishVolume", s.csi.Publish)
}

// unpublishAll unpublishes vols, retrying a failed call a few times as kubelet would
// (a tmpfs can be briefly busy while a driver's own controller reads it); the retries
// are counted and reported.
func unpublishAll(t *testing.T, s *system, vols []csiclient.Volume) {
	t.Helper()
	each(t, s, vols, 8, "NodeUnpublishVolume", func(ctx context.Context, v csiclient.Volume) error {
		var err error
		for attempt := range 10 {
			if err = s.csi.Unpublish(ctx, v); err == nil {
				return nil
			}
			s.unpublishRetries.Add(1)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
			}
		}
		return err
	})
}

func each(t *testing.T, s *system, vols []csiclient.Volume, par int, what string, call func(context.Context, csiclient.Volume) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	sem := make(chan struct{}, par)
	for _, v := range vols {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := call(ctx, v); err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("pod %s: %v", v.Pod.Name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%s: %d of %d %s calls failed, first: %s", s.name, len(failed), len(vols), what, failed[0])
	}
}

// unmountAll detaches whatever is still mounted under root, so a failed run leaves no
// tmpfs behind.
func unmountAll(root string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
