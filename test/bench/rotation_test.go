//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// rotationObjects is the number of Secrets Manager objects of each rotation class.
const rotationObjects = 5

// TestSideBySideRotation is scenario 3 for our side: volumes × 5 objects over several
// classes, one ServiceAccount per class, published through the real `secretmount driver`
// with rotation on; one tick with nothing changed and one after a change in moto.
func TestSideBySideRotation(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Unavailable(t, "the benchmark mounts tmpfs volumes and needs root")
	}
	volumes, classes, interval, mode := 200, 20, 5*time.Second, "full"
	if os.Getenv("BENCH_QUICK") != "" {
		// The interval stays above the AWS backend's 2 s coalescing window, so each tick
		// is a fresh poll of the backend.
		volumes, classes, interval, mode = 20, 4, 2500*time.Millisecond, "quick"
	}
	root := harness.RepoRoot(t)
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(root, "charts", "secretmount", "crds"))
	moto := harness.SharedMoto(t)
	e := &env{api: api, proxy: harness.NewCountingProxy(t, moto.Endpoint, harness.AWSAction), ns: api.NewNamespace(t), tokens: map[string]csiclient.Token{}}
	e.node = "rot-" + e.ns
	e.root = t.TempDir()
	t.Cleanup(func() { unmountAll(e.root) })

	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	objectName := func(class, object int) string { return fmt.Sprintf("rot-%s-c%d-o%d", e.ns, class, object) }
	put := func(name, value string, create bool) {
		t.Helper()
		var err error
		if create {
			_, err = sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: sdkaws.String(name), SecretString: sdkaws.String(value)})
		} else {
			_, err = sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: sdkaws.String(name), SecretString: sdkaws.String(value)})
		}
		if err != nil {
			t.Fatalf("writing %s in moto: %v", name, err)
		}
	}
	for c := range classes {
		objects := ""
		for o := range rotationObjects {
			put(objectName(c, o), "generation-1", true)
			objects += fmt.Sprintf("- objectName: %s\n  objectType: secretsmanager\n", objectName(c, o))
		}
		spc := secretsstorev1.SecretProviderClass{
			TypeMeta:   metav1.TypeMeta{APIVersion: "secrets-store.csi.x-k8s.io/v1", Kind: "SecretProviderClass"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rot-%d", c), Namespace: e.ns},
			Spec:       secretsstorev1.SecretProviderClassSpec{Provider: "aws", Parameters: map[string]string{"objects": objects}},
		}
		b, err := yaml.Marshal(&spc)
		if err != nil {
			t.Fatal(err)
		}
		api.ApplyManifest(t, string(b))
		sa := fmt.Sprintf("rot-%d", c)
		api.CreateServiceAccount(t, e.ns, sa, map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/" + sa})
	}

	bin := buildSecretmount(t)
	timed := newTimedProxy(t, e.proxy.URL)
	sock := filepath.Join(t.TempDir(), "csi.sock")
	metricsAddr := freeAddr(t)
	drv := startProc(t, "secretmount driver (rotation)", bin, sock, nil, "driver",
		"--endpoint=unix://"+sock, "--node-id="+e.node, "--kubeconfig="+api.Kubeconfig,
		"--provider-volume="+t.TempDir(), "--metrics-addr="+metricsAddr,
		"--enable-secret-rotation", "--rotation-poll-interval="+interval.String(),
		"--aws-endpoint="+timed.URL, "--aws-region="+harness.MotoRegion)
	s := &system{name: "ours", procs: []*proc{drv}, csi: dial(t, sock)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.csi.WaitReady(ctx); err != nil {
		t.Fatalf("ours: %v", err)
	}

	var vols []csiclient.Volume
	for c := range classes {
		vols = append(vols, e.volumes(t, volumes/classes, fmt.Sprintf("rot-%d", c), fmt.Sprintf("rot-%d", c))...)
	}
	publishAll(t, s, vols, 8)
	var unpublished sync.Once
	unpublish := func() { unpublished.Do(func() { unpublishAll(t, s, vols) }) }
	t.Cleanup(unpublish)

	ticker := &tickWatch{t: t, url: "http://" + metricsAddr + "/metrics", interval: interval, volumes: len(vols), timed: timed}
	firstObject := func(i int) string { return filepath.Join(vols[i].TargetPath, objectName(i/(volumes/classes), 0)) }
	holds := func(value string) func() bool {
		return func() bool {
			for i := range vols {
				if b, err := os.ReadFile(firstObject(i)); err != nil || string(b) != value {
					return false
				}
			}
			return true
		}
	}
	if !holds("generation-1")() {
		t.Fatal("a published volume does not hold its first object's value")
	}
	// The first tick may still be answered from the publishes' fetches, which the
	// backend shares for its 2 s window; it is let pass unmeasured, as on the upstream side.
	ticker.measure(e, drv, vols, nil, nil)
	noChange := ticker.measure(e, drv, vols, nil, nil)
	changed := ticker.measure(e, drv, vols, func() {
		for c := range classes {
			put(objectName(c, 0), "generation-2", false)
		}
	}, holds("generation-2"))
	// Our volumes go before the upstream side runs, so our driver's ticks find nothing
	// to refresh and take no share of the CPU the upstream side is measured on.
	unpublish()
	upStart := time.Now()
	up := upstreamRotation(t, e, upstreamRotationSide{
		moto: moto, classes: classes, volumes: volumes, interval: upstreamRotationInterval(interval),
		objects: func(c int) []string {
			var names []string
			for o := range rotationObjects {
				names = append(names, objectName(c, o))
			}
			return names
		},
		first: func(c int) string { return objectName(c, 0) },
		change: func(value string) {
			for c := range classes {
				put(objectName(c, 0), value, false)
			}
		},
	}, "generation-2", "generation-3")
	t.Logf("upstream side of scenario 3 took %s", time.Since(upStart).Round(time.Millisecond))

	tab := &table{}
	tab.note("scenario 3, run: %s (%d volumes × %d objects over %d classes, one ServiceAccount per class, %d unique (identity, object) pairs)",
		mode, len(vols), rotationObjects, classes, classes*rotationObjects)
	tab.note("ours: `secretmount driver --enable-secret-rotation --rotation-poll-interval=%s`, moto behind the counting proxy; the change tick follows a new value of one object per class", interval)
	tab.note("%s", up.note)
	tab.note("both: backend requests counted at a proxy in front of moto; the upstream side's are `secretmount provider`'s (its AWS backend coalesces equal fetches within 2 s), not the upstream AWS provider's")
	tab.note("file writes: volumes whose ..data link changed over the tick; wall: from the tick's first backend request to its last (no change), or until every volume showed the change")
	tab.note("SecretProviderClassPodStatus updates: upstream's objects whose resourceVersion moved over the tick (ours keeps no such object); neither side's classes sync Secrets, so neither writes one")
	tab.note("upstream reconcile worker busy: its mean rotation reconcile time (rotation_reconcile_duration_sec) × volumes; its one worker runs them one after another, so this is its tick's length, while a no-change wall spans only the backend requests")
	for _, r := range []struct {
		label string
		f, u  tickFigures
		busy  time.Duration
		spcps int
	}{{"no change", noChange, up.noChange, up.noChangeBusy, up.noChangeStatusWrites},
		{"one object per class changed", changed, up.changed, up.changedBusy, up.changedStatusWrites}} {
		seen := map[string]bool{}
		var kinds []string
		for _, m := range []map[string]int{r.f.requests, r.u.requests} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					kinds = append(kinds, k)
				}
			}
		}
		sort.Strings(kinds)
		total, upTotal := 0, 0
		for _, k := range kinds {
			total += r.f.requests[k]
			upTotal += r.u.requests[k]
			tab.row(fmt.Sprintf("3 rotation tick, %s: backend %s", r.label, k), float64(r.f.requests[k]), float64(r.u.requests[k]))
		}
		tab.row(fmt.Sprintf("3 rotation tick, %s: backend requests, all kinds", r.label), float64(total), float64(upTotal))
		tab.row(fmt.Sprintf("3 rotation tick, %s: file writes (volumes)", r.label), float64(r.f.writes), float64(r.u.writes))
		tab.row(fmt.Sprintf("3 rotation tick, %s: node processes CPU s", r.label), r.f.cpu.Seconds(), r.u.cpu.Seconds())
		tab.row(fmt.Sprintf("3 rotation tick, %s: wall ms", r.label), ms(r.f.wall), ms(r.u.wall))
		tab.row(fmt.Sprintf("3 rotation tick, %s: upstream reconcile worker busy ms", r.label), -1, ms(r.busy))
		tab.row(fmt.Sprintf("3 rotation tick, %s: API writes, SecretProviderClassPodStatus updates", r.label), -1, float64(r.spcps))
	}
	tab.print(os.Stdout)
}

// tickFigures are what one rotation tick cost.
type tickFigures struct {
	requests map[string]int // backend requests by action, as moto saw them
	writes   int            // volumes whose ..data link moved
	cpu      time.Duration
	wall     time.Duration
}

// tickWatch follows the driver's rotation ticks through its refresh counter: each full
// tick adds one refresh per published volume.
type tickWatch struct {
	t        *testing.T
	url      string
	interval time.Duration
	volumes  int
	timed    *timedProxy
	// counter, when set, replaces our refresh counter as the count that grows by one per
	// volume per tick (the upstream driver's rotation reconciles).
	counter func() float64
	// others are further processes whose CPU the tick is charged (the upstream provider).
	others []*proc
}

// measure waits until the driver is between ticks, runs change (if any), and measures
// the next tick. The driver's metrics are scraped only every 100 ms while the tick runs,
// so the scrapes add little to its CPU figure; the tick's start is the first request
// moto sees, its end the last request (no change) or the moment every volume shows the
// change (shows, read from the files, not from the driver).
func (w *tickWatch) measure(e *env, drv *proc, vols []csiclient.Volume, change func(), shows func() bool) tickFigures {
	w.t.Helper()
	c0 := w.quiet()
	before := dataLinks(vols)
	if change != nil {
		change()
	}
	e.proxy.Take()
	w.timed.take()
	cpu0 := w.cpu(drv)
	var shown time.Time
	deadline := time.Now().Add(2*time.Minute + 2*w.interval)
	lastScrape := time.Time{}
	for {
		if shows != nil && shown.IsZero() && shows() {
			shown = time.Now()
		}
		if time.Since(lastScrape) >= 100*time.Millisecond {
			lastScrape = time.Now()
			if c := w.refreshes(); c >= c0+float64(w.volumes) && (shows == nil || !shown.IsZero()) {
				break
			} else if time.Now().After(deadline) {
				w.t.Fatalf("the rotation tick refreshed %v of %d volumes within the deadline", c-c0, w.volumes)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	f := tickFigures{cpu: w.cpu(drv) - cpu0}
	var first, last time.Time
	f.requests = e.proxy.Take()
	first, last = w.timed.take()
	f.wall = last.Sub(first)
	if shows != nil {
		f.wall = shown.Sub(first)
	}
	after := dataLinks(vols)
	for i := range vols {
		if before[i] != after[i] {
			f.writes++
		}
	}
	return f
}

// quiet waits until the refresh counter has stood still for a third of an interval, so no
// tick is running, and returns it.
func (w *tickWatch) quiet() float64 {
	w.t.Helper()
	last, since := w.refreshes(), time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if c := w.refreshes(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) >= w.interval/3 {
			return c
		}
	}
	w.t.Fatalf("the driver's rotation ticks never paused for %s", w.interval/3)
	return 0
}

// cpu is the CPU time drv and w.others have used so far.
func (w *tickWatch) cpu(drv *proc) time.Duration {
	total := cpuTime(w.t, drv)
	for _, p := range w.others {
		total += cpuTime(w.t, p)
	}
	return total
}

// refreshes is secretmount_driver_rotation_refresh_total summed over its results (or
// w.counter when set).
func (w *tickWatch) refreshes() float64 {
	w.t.Helper()
	if w.counter != nil {
		return w.counter()
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(w.url)
	if err != nil {
		w.t.Fatalf("scraping the driver's metrics: %v", err)
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "secretmount_driver_rotation_refresh_total{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			total += v
		}
	}
	return total
}

// dataLinks is where each volume's ..data link points.
func dataLinks(vols []csiclient.Volume) []string {
	out := make([]string, len(vols))
	for i, v := range vols {
		out[i], _ = os.Readlink(filepath.Join(v.TargetPath, "..data"))
	}
	return out
}

// timedProxy sits in front of the counting proxy and notes when requests arrive, so a
// tick's wall time is read at the backend rather than by scraping the driver.
type timedProxy struct {
	URL string

	mu          sync.Mutex
	first, last time.Time
}

func newTimedProxy(t *testing.T, target string) *timedProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &timedProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		p.mu.Lock()
		if p.first.IsZero() {
			p.first = now
		}
		p.last = now
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// take returns when the first and the last request since the last take arrived (zero
// when there were none).
func (p *timedProxy) take() (first, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	first, last = p.first, p.last
	p.first, p.last = time.Time{}, time.Time{}
	return first, last
}
