//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// upstreamRotationDriver is the driver name the upstream side runs under: a name of the
// benchmark's own, so its CSIDriver object (which makes the rotation reconciler request
// ServiceAccount tokens, as kubelet does for publishes) is no other test's.
const upstreamRotationDriver = "rotation.bench.secretmount.test"

// upstreamRotationSide describes what scenario 3 sets up for the upstream side.
type upstreamRotationSide struct {
	moto     *harness.Moto
	classes  int
	volumes  int           // all volumes, spread evenly over the classes
	interval time.Duration // the upstream driver's --rotation-poll-interval
	// objects are the Secrets Manager names of class c's objects; first is the one (and
	// its file) that the change tick changes.
	objects func(class int) []string
	first   func(class int) string
	// change writes value as the object of each class that the change tick changes.
	change func(value string)
}

// upstreamRotationResult is the upstream side's two ticks.
type upstreamRotationResult struct {
	noChange, changed tickFigures
	// busy is, per tick, how long the reconcile worker spent on the tick's volumes: its
	// mean reconcile time over the measurement times the volumes. A no-change tick's wall
	// spans only the backend requests, and the provider answers most reconciles from its
	// coalesced fetches, so this is the tick's length as the driver saw it.
	noChangeBusy, changedBusy time.Duration
	// statusWrites are, per tick, the SecretProviderClassPodStatus objects the tick
	// updated (their resourceVersion moved): the API writes of its rotation.
	noChangeStatusWrites, changedStatusWrites int
	note                                      string
}

// upstreamRotation runs scenario 3 against the upstream driver v1.5.4 with rotation on
// and `secretmount provider` as its aws provider. Its reconciler lists the
// SecretProviderClassPodStatus objects its publishes wrote, reads each one's pod from
// the API server (it must be on the node and carry the CSI volume the status names),
// asks for a token per pod, and calls the provider's Mount for every volume on every
// tick; this side creates those pods as kubelet's API server would hold them. The
// volumes first hold before, and the change tick follows the change to after.
func upstreamRotation(t *testing.T, e *env, side upstreamRotationSide, before, after string) upstreamRotationResult {
	t.Helper()
	bin := upstreamDriverPath(t)
	csiDriver := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: upstreamRotationDriver},
		Spec: storagev1.CSIDriverSpec{
			PodInfoOnMount: ptr(true),
			TokenRequests:  []storagev1.TokenRequest{{Audience: tokenAudience}},
		},
	}
	_ = e.api.Client.StorageV1().CSIDrivers().Delete(context.Background(), upstreamRotationDriver, metav1.DeleteOptions{})
	if _, err := e.api.Client.StorageV1().CSIDrivers().Create(context.Background(), csiDriver, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CSIDriver %s: %v", upstreamRotationDriver, err)
	}
	t.Cleanup(func() {
		_ = e.api.Client.StorageV1().CSIDrivers().Delete(context.Background(), upstreamRotationDriver, metav1.DeleteOptions{})
	})
	api := e.api
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "test", "interop", "testdata"))

	up := &env{api: api, proxy: harness.NewCountingProxy(t, side.moto.Endpoint, harness.AWSAction), ns: e.ns,
		node: "uprot-" + e.ns, root: e.root, tokens: map[string]csiclient.Token{}}
	timed := newTimedProxy(t, up.proxy.URL)
	providers := t.TempDir()
	provSock := filepath.Join(providers, "aws.sock")
	prov := startProc(t, "secretmount provider (upstream rotation)", buildSecretmount(t), provSock, nil, "provider",
		"--provider-name=aws", "--provider-volume="+providers, "--kubeconfig="+api.Kubeconfig,
		"--aws-endpoint="+timed.URL, "--aws-region="+harness.MotoRegion)
	sock := filepath.Join(t.TempDir(), "csi.sock")
	metricsAddr := freeAddr(t)
	drv := startProc(t, "upstream driver (rotation)", bin, sock, []string{"KUBECONFIG=" + api.Kubeconfig},
		"--endpoint=unix://"+sock, "--nodeid="+up.node, "--drivername="+upstreamRotationDriver,
		"--provider-volume="+providers, "--additional-provider-volume-paths="+filepath.Join(providers, "none"),
		"--metrics-addr="+metricsAddr,
		"--enable-secret-rotation", "--rotation-poll-interval="+side.interval.String())
	drv.metrics = "http://" + metricsAddr + "/metrics"
	s := &system{name: "upstream", procs: []*proc{drv, prov}, csi: dial(t, sock)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.csi.WaitReady(ctx); err != nil {
		t.Fatalf("upstream: %v", err)
	}

	per := side.volumes / side.classes
	var vols []csiclient.Volume
	for c := range side.classes {
		class := fmt.Sprintf("uprot-%d", c)
		up.storeRotationClass(t, class, side.objects(c))
		vols = append(vols, up.rotationPods(t, per, class, fmt.Sprintf("rot-%d", c))...)
	}
	publishAll(t, s, vols, 8)
	t.Cleanup(func() { unpublishAll(t, s, vols) })

	holds := func(value string) func() bool {
		return func() bool {
			for i, v := range vols {
				b, err := os.ReadFile(filepath.Join(v.TargetPath, side.first(i/per)))
				if err != nil || string(b) != value {
					return false
				}
			}
			return true
		}
	}
	if !holds(before)() {
		t.Fatal("upstream: a published volume does not hold its first object's value")
	}
	reconciles := func() float64 {
		return scrapeCounters(t, drv.metrics, "rotation_reconcile_total", "rotation_reconcile_error_total")
	}
	failures := func() float64 { return scrapeCounters(t, drv.metrics, "rotation_reconcile_error_total") }
	w := &tickWatch{t: t, interval: side.interval, volumes: len(vols), timed: timed, counter: reconciles, others: []*proc{prov}}
	busy := func(run func() tickFigures) (tickFigures, time.Duration, int) {
		n0, s0 := reconciles(), scrapeCounters(t, drv.metrics, "rotation_reconcile_duration_sec_sum")
		v0 := up.statusVersions(t)
		f := run()
		n, sum := reconciles()-n0, scrapeCounters(t, drv.metrics, "rotation_reconcile_duration_sec_sum")-s0
		writes := 0
		for name, v := range up.statusVersions(t) {
			if v0[name] != v {
				writes++
			}
		}
		if n <= 0 || sum <= 0 {
			return f, -1, writes
		}
		return f, time.Duration(sum / n * float64(len(vols)) * float64(time.Second)), writes
	}
	// The first tick after the publishes asks the API server for a token per pod (the
	// driver then keeps them for most of their hour); the ticks measured are later ones,
	// as a node runs them for most of a token's life.
	firstTick := time.Now().Add(2*time.Minute + 2*side.interval)
	for reconciles() < float64(len(vols)) {
		if time.Now().After(firstTick) {
			t.Fatalf("upstream: its first rotation tick reconciled %v of %d volumes within the deadline", reconciles(), len(vols))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e0 := failures()
	noChange, noChangeBusy, noChangeWrites := busy(func() tickFigures { return w.measure(up, drv, vols, nil, nil) })
	if n := failures() - e0; n > 0 {
		// The tick counted reconciles that failed: the reconciler is not driven as it
		// would be on a node, and its figures would mean nothing (the log follows).
		t.Fatalf("upstream: %v of %d rotation reconciles failed on the no-change tick (see the driver log's \"failed to reconcile\" lines)", n, len(vols))
	}
	changed, changedBusy, changedWrites := busy(func() tickFigures { return w.measure(up, drv, vols, func() { side.change(after) }, holds(after)) })
	return upstreamRotationResult{
		noChange: noChange, noChangeBusy: noChangeBusy, noChangeStatusWrites: noChangeWrites,
		changed: changed, changedBusy: changedBusy, changedStatusWrites: changedWrites,
		note: fmt.Sprintf("upstream: driver v1.5.4 `--enable-secret-rotation --rotation-poll-interval=%s` (one reconcile worker, as built) with `secretmount provider` as its aws provider; "+
			"ticks measured after its first (which asks for a token per pod); CPU is driver + provider; its pods, on a node of their own, carry the CSI volume and its CSIDriver asks for the %s token the reconciler sends", side.interval, tokenAudience),
	}
}

// storeRotationClass stores an aws class of the named Secrets Manager objects for the
// upstream side. The upstream rotation reconciler (v1.5.4, pkg/rotation/reconciler.go)
// sends the provider the class's parameters and the pod's fields but not the
// secretProviderClass attribute its publishes send; `secretmount provider` answers both.
func (e *env) storeRotationClass(t *testing.T, class string, objects []string) {
	t.Helper()
	list := ""
	for _, o := range objects {
		list += fmt.Sprintf("- objectName: %s\n  objectType: secretsmanager\n", o)
	}
	spc := secretsstorev1.SecretProviderClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "secrets-store.csi.x-k8s.io/v1", Kind: "SecretProviderClass"},
		ObjectMeta: metav1.ObjectMeta{Name: class, Namespace: e.ns},
		Spec: secretsstorev1.SecretProviderClassSpec{Provider: "aws",
			Parameters: map[string]string{"objects": list}},
	}
	b, err := yaml.Marshal(&spc)
	if err != nil {
		t.Fatal(err)
	}
	e.api.ApplyManifest(t, string(b))
}

// statusVersions is the resourceVersion of each SecretProviderClassPodStatus of e's
// node, by name.
func (e *env) statusVersions(t *testing.T) map[string]string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(e.api.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasspodstatuses"}
	list, err := dyn.Resource(gvr).Namespace(e.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: secretsstorev1.InternalNodeLabel + "=" + e.node})
	if err != nil {
		t.Fatalf("listing the SecretProviderClassPodStatus objects of node %s: %v", e.node, err)
	}
	out := make(map[string]string, len(list.Items))
	for _, o := range list.Items {
		out[o.GetName()] = o.GetResourceVersion()
	}
	return out
}

// rotationPods creates n pods of serviceAccount sa on e's node, each with a CSI volume
// "secrets" of class under the upstream rotation driver's name, and returns their
// kubelet-shaped volumes: the reconciler matches the status's target path to the pod's
// UID and volume name.
func (e *env) rotationPods(t *testing.T, n int, class, sa string) []csiclient.Volume {
	t.Helper()
	return e.podVolumes(t, n, class, func(sa string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "uprot-", Namespace: e.ns},
			Spec: corev1.PodSpec{NodeName: e.node, ServiceAccountName: sa,
				Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "secrets", MountPath: "/mnt/secrets", ReadOnly: true}}}},
				Volumes: []corev1.Volume{{Name: "secrets", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
					Driver: upstreamRotationDriver, ReadOnly: ptr(true),
					VolumeAttributes: map[string]string{"secretProviderClass": class},
				}}}},
			},
		}
	}, sa)
}

// scrapeCounters sums the samples of the named counters (any labels) at a Prometheus
// endpoint.
func scrapeCounters(t *testing.T, url string, names ...string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
				continue
			}
			var v float64
			if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
				total += v
			}
		}
	}
	return total
}

func ptr[T any](v T) *T { return &v }

// upstreamRotationInterval is the upstream driver's poll interval for ours: in a full run
// its single reconcile worker needs longer than our interval for 200 volumes (each change
// writes a SecretProviderClassPodStatus through a client held to 5 requests a second), and
// the benchmark measures one tick at a time, so its ticks must not run into each other.
func upstreamRotationInterval(ours time.Duration) time.Duration {
	if os.Getenv("BENCH_QUICK") != "" {
		return ours
	}
	return time.Minute
}
