//go:build integration

package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/sync"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// fakeClock is the driver backend's clock in the rotation test: each tick moves it past
// the coalescing window, as two ticks --rotation-poll-interval apart are.
type fakeClock struct {
	mu  gosync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// generations knows the exact content of every generation: the files of a volume and,
// for each synced Secret, the values of its keys. A Secret's keys come from different
// backend objects, and moto takes a new generation one object at a time, so a
// SecretSync pass between two writes rightly sees two generations; each object's keys
// must still be of one generation.
type generations struct {
	files map[int]map[string]string
	// secrets: Secret name → the key groups of one backend object each → generation →
	// key → value.
	secrets map[string][]map[int]map[string]string
}

func (e *awsFaultEnv) generations(t *testing.T, upTo int, syncName string, syncKeys map[string]string) *generations {
	t.Helper()
	objectOf := map[string]int{} // file → plan object
	for i, o := range e.plan.Objects {
		if o.File != "" {
			objectOf[o.File] = i
		}
		for _, x := range o.Extractions {
			objectOf[x.File] = i
		}
	}
	keyFiles := map[string]map[string]string{syncName: syncKeys} // Secret → key → file
	for _, so := range e.plan.SecretObjects {
		keyFiles[so.SecretName] = map[string]string{}
		for _, d := range so.Data {
			keyFiles[so.SecretName][d.Key] = d.ObjectName
		}
	}
	g := &generations{files: map[int]map[string]string{}, secrets: map[string][]map[int]map[string]string{}}
	for gen := 1; gen <= upTo; gen++ {
		pg, s3 := awsValues(gen)
		g.files[gen] = renderedFiles(t, e.plan, pg, s3)
	}
	for name, keys := range keyFiles {
		groups := make([]map[int]map[string]string, len(e.plan.Objects))
		for key, file := range keys {
			obj, ok := objectOf[file]
			if !ok {
				t.Fatalf("Secret %s key %s: file %s is no planned file", name, key, file)
			}
			if groups[obj] == nil {
				groups[obj] = map[int]map[string]string{}
			}
			for gen, files := range g.files {
				if groups[obj][gen] == nil {
					groups[obj][gen] = map[string]string{}
				}
				groups[obj][gen][key] = files[file]
			}
		}
		for _, grp := range groups {
			if grp != nil {
				g.secrets[name] = append(g.secrets[name], grp)
			}
		}
	}
	return g
}

// fileGen is the generation whose files dir holds exactly, or 0.
func (g *generations) fileGen(dir string) int {
	got, err := topFiles(dir)
	if err != nil {
		return 0
	}
	for gen, want := range g.files {
		if diffFiles(got, want) == "" {
			return gen
		}
	}
	return 0
}

// secretGens is, for each backend object a Secret's keys come from, the generation its
// keys hold (0 when they hold no one generation's values), and whether the Secret has
// no other keys.
func (g *generations) secretGens(name string, data map[string][]byte) ([]int, bool) {
	groups := g.secrets[name]
	gens := make([]int, len(groups))
	keys := 0
	for i, grp := range groups {
		for gen, want := range grp {
			same := true
			for k, v := range want {
				if string(data[k]) != v {
					same = false
					break
				}
			}
			if same {
				gens[i] = max(gens[i], gen)
			}
		}
		keys += len(grp[1])
	}
	return gens, keys == len(data)
}

// secretAt tells whether every object of the Secret is at generation gen.
func (g *generations) secretAt(name string, data map[string][]byte, gen int) bool {
	gens, exact := g.secretGens(name, data)
	for _, got := range gens {
		if got != gen {
			return false
		}
	}
	return exact
}

// secretWatch reads the synced Secrets over and over while the ticks run and checks that
// each read finds each object's keys at one generation, never older than the one read
// before, and no other keys.
type secretWatch struct {
	mu       gosync.Mutex
	reads    int
	last     map[string][]int
	problems []string
}

func (w *secretWatch) problem(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.problems = appendProblem(w.problems, fmt.Sprintf(format, args...))
}

func (w *secretWatch) run(ctx context.Context, c client.Client, ns string, g *generations, names []string) {
	for ctx.Err() == nil {
		for _, name := range names {
			var s corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
				if ctx.Err() == nil {
					w.problem("get Secret %s: %v", name, err)
				}
				continue
			}
			gens, exact := g.secretGens(name, s.Data)
			w.mu.Lock()
			w.reads++
			prev := w.last[name]
			if prev == nil {
				prev = make([]int, len(gens))
			}
			next := make([]int, len(gens))
			for i, gen := range gens {
				next[i] = max(prev[i], gen)
				switch {
				case gen == 0:
					w.problems = appendProblem(w.problems, fmt.Sprintf("Secret %s: the keys of object %d hold no one generation (keys %v)", name, i, secretKeys(&s)))
				case gen < prev[i]:
					w.problems = appendProblem(w.problems, fmt.Sprintf("Secret %s: object %d went back from generation %d to %d", name, i, prev[i], gen))
				}
			}
			if !exact {
				w.problems = appendProblem(w.problems, fmt.Sprintf("Secret %s has keys %v, not just the synced ones", name, secretKeys(&s)))
			}
			w.last[name] = next
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func appendProblem(list []string, p string) []string {
	if len(list) < 10 {
		return append(list, p)
	}
	return list
}

// TestFaultsRotation publishes 16 volumes of the guide's AWS class (each pod its own
// ServiceAccount) with mount-driven sync of the class's secretObjects, and a SecretSync
// of the same class whose controller rotates every 250ms. Thirty rotation ticks of the
// driver run through a proxy faulting 10% of the requests to moto (the SecretSync
// backend through its own, faulting 50%), with a new generation of both secrets every
// third tick. After every tick each volume holds one whole generation, never older than
// before; throughout, each synced Secret holds, for each backend object, one whole
// generation, never older than before, and nothing else. Once the faults stop, one more
// tick brings every volume, and the rotations bring every Secret, to the last
// generation. Failed refreshes and failed SecretSync passes must have happened, or the
// run showed nothing.
func TestFaultsRotation(t *testing.T) {
	const volumes, ticks, every = 16, 30, 3
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	ns := api.NewNamespace(t)
	clock := &fakeClock{now: time.Now()}
	e := startAWSFaultEnv(t, awsFaultSetup{seed: 20261202, namespace: ns, aws: func(o *aws.Options) { o.Now = clock.Now }})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// The controller-runtime clients of the sync log through its root logger.
	ctrllog.SetLogger(harness.LeakLogger(t))
	// Mount-driven sync, as the driver runs it: the driver tells it of new content.
	mountMetrics := prometheus.NewRegistry()
	ms, stopEvents, err := sync.MountSyncFor(api.RestConfig(), mountMetrics, harness.LeakLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopEvents)
	t.Cleanup(func() { recordMetrics(t, mountMetrics) })
	e.fd.d.AddObserver(ms)
	serve(t, ctx, func(ctx context.Context) error { return ms.Run(ctx, 2) })

	c, syncMetrics, syncProxy := startSyncController(t, ctx, api, e, ns)
	syncKeys := map[string]string{"username": "db-username", "password": "db-password", "access-key": "s3-access-key", "secret-key": "s3-secret-key"}
	ss := &v1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "synced"}, Spec: v1alpha1.SecretSyncSpec{
		SecretProviderClassName: e.spc.Name, ServiceAccountName: "sync-sa",
		SecretObject: v1alpha1.SecretObject{Type: "Opaque"},
	}}
	for _, key := range sortedKeys(syncKeys) {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, v1alpha1.SecretObjectData{SourcePath: syncKeys[key], TargetKey: key})
	}
	if err := c.Create(ctx, ss); err != nil {
		t.Fatalf("create SecretSync: %v", err)
	}

	const lastGen = (ticks + every - 1) / every
	g := e.generations(t, lastGen, ss.Name, syncKeys)
	var secretNames []string
	for name := range g.secrets {
		secretNames = append(secretNames, name)
	}
	sort.Strings(secretNames)

	vols := make([]csiclient.Volume, volumes)
	for i := range vols {
		vols[i] = e.volume(t, i)
		pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
		err := e.fd.csi.Publish(pctx, vols[i])
		pcancel()
		if err != nil {
			t.Fatalf("publish %d without faults: %v", i, err)
		}
		t.Cleanup(func() { _ = e.fd.csi.Unpublish(context.Background(), vols[i]) })
	}
	waitSecretsAt(t, c, ns, g, secretNames, 1)

	watchCtx, stopWatch := context.WithCancel(ctx)
	watch := &secretWatch{last: map[string][]int{}}
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); watch.run(watchCtx, c, ns, g, secretNames) }()

	// Faults reach the SecretSync controller first, until one of its passes has failed:
	// what a first failure starts once (the event broadcasters of its Warning) is then
	// part of the baseline, not counted as growth.
	if err := syncProxy.SetRate(syncFaultRate); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); counterTotal(t, syncMetrics, "secretmount_sync_errors_total") == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no SecretSync pass failed in a minute at a %.0f%% fault rate", syncFaultRate*100)
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := quietSample(t, e.proxy, syncProxy)
	if err := e.proxy.SetRate(faultRate); err != nil {
		t.Fatal(err)
	}
	e.proxy.Reset()
	held := make([]int, volumes)
	for i := range held {
		held[i] = 1
	}
	gen, kept, rotated := 1, 0, 0
	start := time.Now()
	for tick := 1; tick <= ticks; tick++ {
		if tick > 1 && tick%every == 1 {
			gen++
			seedAWS(t, e.moto, gen)
		}
		clock.advance(time.Minute)
		tctx, tcancel := context.WithTimeout(ctx, time.Minute)
		e.fd.d.RefreshAll(tctx)
		tcancel()
		for i, v := range vols {
			now := g.fileGen(v.TargetPath)
			switch {
			case now == 0:
				t.Errorf("tick %d: volume %d holds no whole generation", tick, i)
			case now < held[i]:
				t.Errorf("tick %d: volume %d went back from generation %d to %d", tick, i, held[i], now)
			case now < gen:
				kept++
			case now > held[i]:
				rotated++
			}
			held[i] = max(held[i], now)
		}
	}
	tickTime := time.Since(start)
	refreshes := counterSummary(t, e.fd.metrics, "secretmount_driver_rotation_refresh_total")
	faults, syncFaults := faultSummary(e.proxy), faultSummary(syncProxy)
	syncErrors := counterSummary(t, syncMetrics, "secretmount_sync_errors_total")

	for _, p := range []*harness.FaultProxy{e.proxy, syncProxy} {
		if err := p.SetRate(0); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(time.Minute)
	e.fd.d.RefreshAll(ctx)
	for i, v := range vols {
		if now := g.fileGen(v.TargetPath); now != gen {
			t.Errorf("volume %d holds generation %d once faults stopped, want %d", i, now, gen)
		}
	}
	waitSecretsAt(t, c, ns, g, secretNames, gen)
	stopWatch()
	<-watchDone
	for _, p := range watch.problems {
		t.Error(p)
	}
	after := checkNoGrowth(t, base, growthTolerance, e.proxy, syncProxy)

	t.Logf("rotation: %d volumes, %d ticks in %s, %d generations: %d volume rotations, %d volume-ticks kept older content while faults hit",
		volumes, ticks, tickTime.Round(time.Millisecond), gen, rotated, kept)
	t.Logf("rotation: driver refreshes by outcome: %s", refreshes)
	t.Logf("rotation: mount-driven Secret syncs: %s", counterSummary(t, mountMetrics, "secretmount_sync_total"))
	t.Logf("rotation: SecretSync syncs: %s; failed while faults hit, by reason: %s", counterSummary(t, syncMetrics, "secretmount_sync_total"), syncErrors)
	t.Logf("rotation: SecretSync backend at %.0f%% faults, one attempt per request: %s", syncFaultRate*100, syncFaults)
	t.Logf("rotation: %s", faults)
	t.Logf("rotation: %d reads of %d synced Secrets, every object's keys at one generation", watch.reads, len(secretNames))
	t.Logf("rotation: process %s before, %s after", base, after)
	// What the test claims needs failed refreshes to have happened (failed SecretSync
	// passes are waited for above).
	if !strings.Contains(refreshes, "Unavailable") && !strings.Contains(refreshes, "DeadlineExceeded") {
		t.Errorf("no driver refresh failed under faults (%s); nothing showed that content is kept", refreshes)
	}
}

// syncFaultRate is the share of the SecretSync controller's requests that get a fault.
// A pass fails only when DescribeSecret, the batch read and a single read all fail, so
// at 10% with retries a failed pass is too rare to show that the Secret keeps its
// content; its backend makes one attempt per request and faces half its requests
// faulted instead.
const syncFaultRate = 0.5

// startSyncController runs the SecretSync controller with its own AWS backend (real
// clock, one attempt per request, no coalescing window so that every pass asks the
// backend, as passes a poll interval apart do) through its own FaultProxy in front of
// moto, and a 250ms rotation, serving namespace ns. It returns a client, the controller's metrics
// and the proxy.
func startSyncController(t *testing.T, ctx context.Context, api *harness.APIServer, e *awsFaultEnv, ns string) (client.Client, *prometheus.Registry, *harness.FaultProxy) {
	t.Helper()
	scheme, err := sync.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(api.RestConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	api.CreateServiceAccount(t, ns, "sync-sa", nil)
	spc := e.spc.DeepCopy()
	if err := c.Create(ctx, spc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create SecretProviderClass: %v", err)
	}
	proxy := harness.NewFaultProxy(t, e.moto.Endpoint, harness.FaultConfig{Seed: 20261203, MaxDelay: faultMaxDelay, Classify: awsFlow})
	b, err := aws.New(ctx, aws.Options{DefaultRegion: "us-east-1", Endpoint: proxy.URL, Roles: roles{}, MaxAttempts: 1, CoalesceWindow: time.Millisecond, Logger: harness.LeakLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", b)
	registry := prometheus.NewRegistry()
	t.Cleanup(func() { recordMetrics(t, registry) })
	metrics, err := sync.NewMetrics(registry)
	if err != nil {
		t.Fatal(err)
	}
	skip := true
	mgr, err := ctrl.NewManager(api.RestConfig(), ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
		Logger:     harness.LeakLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sync.SetupWithManager(mgr, sync.Config{Registry: reg, RotationPollInterval: 250 * time.Millisecond, Metrics: metrics, Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	serve(t, ctx, mgr.Start)
	return c, registry, proxy
}

// waitSecretsAt waits until every named Secret holds generation gen; the test's deadline
// and a one-minute cap bound the wait.
func waitSecretsAt(t *testing.T, c client.Client, ns string, g *generations, names []string, gen int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var behind []string
		for _, name := range names {
			var s corev1.Secret
			err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s)
			if err != nil {
				behind = append(behind, fmt.Sprintf("%s (%v)", name, err))
				continue
			}
			if !g.secretAt(name, s.Data, gen) {
				gens, _ := g.secretGens(name, s.Data)
				behind = append(behind, fmt.Sprintf("%s at generations %v", name, gens))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Secrets not at generation %d after a minute: %s", gen, strings.Join(behind, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counterTotal sums the values of counter name in reg.
func counterTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// counterSummary lists the values of counter name in reg by their labels' values.
func counterSummary(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.Join(labels, "/"), m.GetCounter().GetValue()))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// secretKeys names a Secret's keys, never its values.
func secretKeys(s *corev1.Secret) []string {
	out := make([]string, 0, len(s.Data))
	for k := range s.Data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
