//go:build integration

package reliability

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
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
