//go:build bench

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider/aws"
	secretsync "github.com/secretmount/secretmount/sync"
	"github.com/secretmount/secretmount/test/harness"
)

// syncAuditPolicy records every request at Metadata level (who, verb, resource; never a
// body), so the API server's audit log counts the controller's reads and writes exactly.
const syncAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// syncUserAgent starts the User-Agent of every request `secretmount sync` makes
// (client-go names the binary), which is how its requests are told from the test's.
const syncUserAgent = "secretmount/"

// TestSideBySideSync is scenario 5: SecretSyncs created at once, against the real
// `secretmount sync` binary, a kube-apiserver of its own with an audit log, and moto
// behind the counting proxy. The upstream Secrets Store CSI Driver has no SecretSync
// (that is the separate secrets-store-sync-controller, not built here), so the upstream
// column is n/a.
func TestSideBySideSync(t *testing.T) {
	syncs, serviceAccounts, interval, mode := 200, 10, 30*time.Second, "full"
	if os.Getenv("BENCH_QUICK") != "" {
		syncs, serviceAccounts, interval, mode = 20, 4, 3*time.Second, "quick"
	}
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	policy := filepath.Join(t.TempDir(), "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(syncAuditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	// A server of its own: the audit flags cannot be added to the shared one, and the
	// figures must not include another test's load.
	began := time.Now()
	api := harness.StartAPIServer(t, "--audit-policy-file="+policy, "--audit-log-path="+auditLog, "--audit-log-mode=blocking")
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	moto := harness.SharedMoto(t)
	seedMoto(t, moto)
	proxy := harness.NewCountingProxy(t, moto.Endpoint, harness.AWSAction)
	audit := &auditReader{path: auditLog}
	t.Logf("API server with audit log and moto ready after %s", time.Since(began).Round(time.Millisecond))
	bin := buildSecretmount(t)
	t.Logf("secretmount built after %s", time.Since(began).Round(time.Millisecond))

	ctrllog.SetLogger(logr.Discard()) // the test's own controller-runtime client
	runs := []syncRun{{label: "defaults", tick: true, interval: interval}}
	if mode == "full" {
		// The limits the controller had before these flags: one worker and client-go's
		// implicit 5 requests/s (burst only; the tick would take minutes at 5/s).
		runs = append(runs, syncRun{label: "1 worker, 5 qps", interval: time.Hour,
			args: []string{"--max-concurrent-reconciles=1", "--kube-api-qps=5", "--kube-api-burst=10"}})
	}
	tab := &table{}
	tab.note("scenario 5, run: %s (%d SecretSyncs of the guide's class created at once, over %d ServiceAccounts; rotation poll %s)", mode, syncs, serviceAccounts, interval)
	tab.note("ours: `secretmount sync` (defaults: --max-concurrent-reconciles=%d --kube-api-qps=100 --kube-api-burst=200) against a kube-apiserver of its own; moto behind the counting proxy",
		secretsync.DefaultMaxConcurrentReconciles)
	tab.note("upstream: n/a: the upstream Secrets Store CSI Driver has no SecretSync (that is the separate secrets-store-sync-controller, not built in this harness)")
	tab.note("API requests: the API server's audit log (Metadata level), requests whose User-Agent is secretmount's; writes are create/update/patch/delete")
	tab.note("time until all Secrets exist: from the first SecretSync create to the last Secret seen by a watch; status: to the last Create=True condition")
	for _, r := range runs {
		// A subtest per run, so its controller is stopped before the next run starts
		// (the runs share the API server, the audit log and the proxy).
		var f syncFigures
		if !t.Run(r.label, func(t *testing.T) { f = r.run(t, api, proxy, audit, bin, syncs, serviceAccounts) }) {
			continue
		}
		t.Logf("%s: done after %s", r.label, time.Since(began).Round(time.Millisecond))
		f.rows(tab, r.label, syncs, serviceAccounts)
		if !r.tick {
			tab.note("%s: `secretmount sync %s`, burst only, rotation poll %s so that no tick mixes in", r.label, strings.Join(r.args, " "), r.interval)
		}
		if f.tickOverlap {
			tab.note("%s: a rotation tick overlapped the burst; its requests are in the burst's figures", r.label)
		}
		if f.tooLargeRV > 0 {
			tab.note("%s: the controller logged %d \"Too large resource version\" errors", r.label, f.tooLargeRV)
		}
	}
	tab.print(os.Stdout)
}

// syncRun is one `secretmount sync` process over a namespace of its own.
type syncRun struct {
	label string
	args  []string
	tick  bool // also measure a no-change rotation tick
	// interval is --rotation-poll-interval; a run without a tick measurement sets one
	// longer than its burst, so no tick mixes into it.
	interval time.Duration
}

// syncFigures are what one run measured.
type syncFigures struct {
	createAll, secretsAll, statusAll time.Duration
	burstWrites, burstReads          map[string]int // by "verb resource", secretmount's requests
	tickWrites, tickReads            map[string]int
	burstBackend, tickBackend        map[string]int // by AWS action, at the proxy
	tick                             bool           // the tick figures were measured
	tickOverlap                      bool           // a rotation tick ran before the burst was done
	tooLargeRV                       int
	burstFetches                     float64 // secretmount_sync_backend_fetches_total over the burst
}

func (r syncRun) run(t *testing.T, api *harness.APIServer, proxy *harness.CountingProxy, audit *auditReader, bin string, syncs, serviceAccounts int) syncFigures {
	interval := r.interval
	t.Helper()
	ns := api.NewNamespace(t)
	storeGuideClass(t, api, ns)
	sas := make([]string, serviceAccounts)
	for i := range sas {
		sas[i] = fmt.Sprintf("sync-%d", i)
		api.CreateServiceAccount(t, ns, sas[i], map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/" + sas[i]})
	}
	scheme, err := secretsync.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.RestConfig()
	cfg.QPS = -1 // the test's own client must not be what is measured
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	metricsAddr, healthAddr := freeAddr(t), freeAddr(t)
	prog := harness.StartProgram(t, harness.ProgramSpec{
		Name: "secretmount-sync",
		Path: bin,
		Args: append([]string{"sync", "--kubeconfig=" + api.Kubeconfig, "--namespace=" + ns,
			"--rotation-poll-interval=" + interval.String(), "--metrics-addr=" + metricsAddr, "--health-addr=" + healthAddr,
			"--aws-region=" + harness.MotoRegion, "--aws-endpoint=" + proxy.URL}, r.args...),
		Ready: func() error { return httpOK("http://" + healthAddr + "/readyz") },
	})
	// Workers start once the caches are in; creating earlier would time the cache sync.
	waitFor(t, "the controller's workers", 30*time.Second, func() bool {
		b, _ := os.ReadFile(prog.Log)
		return strings.Contains(string(b), "Starting workers")
	})
	metrics := "http://" + metricsAddr + "/metrics"

	names := make([]string, syncs)
	for i := range names {
		names[i] = fmt.Sprintf("ss-%03d", i)
	}
	const (
		created   = `secretmount_sync_total{result="created",source="secretsync"}`
		unchanged = `secretmount_sync_total{result="unchanged",source="secretsync"}`
	)
	if r.tick {
		// Start the burst just after a rotation tick, so that the next one comes a whole
		// interval later: a warm-up SecretSync of its own ServiceAccount shows the tick,
		// and is deleted before the burst.
		api.CreateServiceAccount(t, ns, "warm-up", map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/warm-up"})
		createSyncs(t, c, ns, []string{"warm-up"}, []string{"warm-up"})
		waitFor(t, "the warm-up SecretSync", time.Minute, func() bool { return scrapeSum(t, metrics, created) >= 1 })
		waitFor(t, "a rotation tick", 2*interval+time.Minute, func() bool { return scrapeSum(t, metrics, unchanged) >= 1 })
		if err := c.Delete(context.Background(), &v1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "warm-up"}}); err != nil {
			t.Fatal(err)
		}
	}
	secrets := watchSecrets(t, api, ns, names)
	statuses := watchCreated(t, c, ns, names)
	const fetches = `secretmount_sync_backend_fetches_total`
	created0, unchanged0, fetches0 := scrapeSum(t, metrics, created), scrapeSum(t, metrics, unchanged), scrapeSum(t, metrics, fetches)
	proxy.Take()
	audit.take(t)

	start := time.Now()
	createSyncs(t, c, ns, names, sas)
	f := syncFigures{createAll: time.Since(start), tick: r.tick}
	f.secretsAll = secrets.wait(t, 2*time.Minute).Sub(start)
	f.statusAll = statuses.wait(t, 2*time.Minute).Sub(start)
	waitFor(t, "a sync counted per SecretSync", time.Minute, func() bool {
		return scrapeSum(t, metrics, created) >= created0+float64(syncs)
	})
	// Writes the controller queues (events, if any) land after the status; the burst
	// is over once its requests stop.
	audit.settle(t, 500*time.Millisecond)
	unchanged1 := scrapeSum(t, metrics, unchanged)
	f.tickOverlap = unchanged1 > unchanged0
	f.burstFetches = scrapeSum(t, metrics, fetches) - fetches0
	f.burstBackend = proxy.Take()
	f.burstWrites, f.burstReads = audit.take(t)

	if r.tick {
		// The next rotation tick finds nothing changed.
		waitFor(t, "a rotation tick over every SecretSync", 2*interval+time.Minute, func() bool {
			return scrapeSum(t, metrics, unchanged) >= unchanged1+float64(syncs)
		})
		audit.settle(t, 500*time.Millisecond)
		f.tickBackend = proxy.Take()
		f.tickWrites, f.tickReads = audit.take(t)
	}
	if n := scrapeSum(t, metrics, `secretmount_sync_errors_total`); n > 0 {
		t.Errorf("%s: %v failed syncs", r.label, n)
	}
	b, _ := os.ReadFile(prog.Log)
	f.tooLargeRV = strings.Count(string(b), "Too large resource version")
	return f
}

func (f syncFigures) rows(tab *table, label string, syncs, serviceAccounts int) {
	n := float64(syncs)
	tab.row(fmt.Sprintf("5 sync %s: SecretSyncs created by the test, ms", label), ms(f.createAll), -1)
	tab.row(fmt.Sprintf("5 sync %s: time until all Secrets exist, ms", label), ms(f.secretsAll), -1)
	tab.row(fmt.Sprintf("5 sync %s: time until all statuses say Create=True, ms", label), ms(f.statusAll), -1)
	for _, k := range sortedKeys(f.burstWrites) {
		tab.row(fmt.Sprintf("5 sync %s: burst API writes per SecretSync, %s", label, k), float64(f.burstWrites[k])/n, -1)
	}
	tab.row(fmt.Sprintf("5 sync %s: burst API writes per SecretSync, all", label), float64(total(f.burstWrites))/n, -1)
	tab.row(fmt.Sprintf("5 sync %s: burst API reads per SecretSync (get/list)", label), float64(total(f.burstReads))/n, -1)
	for _, k := range sortedKeys(f.burstReads) {
		tab.row(fmt.Sprintf("5 sync %s: burst API reads, %s", label, k), float64(f.burstReads[k]), -1)
	}
	tab.row(fmt.Sprintf("5 sync %s: burst backend fetches (controller's count, after sharing)", label), f.burstFetches, -1)
	tab.row(fmt.Sprintf("5 sync %s: burst TokenRequests per ServiceAccount", label), float64(f.burstWrites["create serviceaccounts/token"])/float64(serviceAccounts), -1)
	for _, k := range sortedKeys(f.burstBackend) {
		tab.row(fmt.Sprintf("5 sync %s: burst backend %s (%d ServiceAccounts)", label, k, serviceAccounts), float64(f.burstBackend[k]), -1)
	}
	if !f.tick {
		return
	}
	tab.row(fmt.Sprintf("5 sync %s: no-change tick API writes", label), float64(total(f.tickWrites)), -1)
	for _, k := range sortedKeys(f.tickWrites) {
		tab.row(fmt.Sprintf("5 sync %s: no-change tick API writes, %s", label, k), float64(f.tickWrites[k]), -1)
	}
	for _, k := range sortedKeys(f.tickReads) {
		tab.row(fmt.Sprintf("5 sync %s: no-change tick API reads, %s", label, k), float64(f.tickReads[k]), -1)
	}
	for _, k := range sortedKeys(f.tickBackend) {
		tab.row(fmt.Sprintf("5 sync %s: no-change tick backend %s", label, k), float64(f.tickBackend[k]), -1)
	}
}

// storeGuideClass stores the guide's SecretProviderClass, as written, in ns.
func storeGuideClass(t *testing.T, api *harness.APIServer, ns string) {
	t.Helper()
	path := filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	var spc secretsstorev1.SecretProviderClass
	if err := yaml.Unmarshal(b, &spc); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	spc.Namespace = ns
	out, err := yaml.Marshal(&spc)
	if err != nil {
		t.Fatal(err)
	}
	api.ApplyManifest(t, string(out))
}

// createSyncs creates one SecretSync per name, sixteen at a time, as an apply of many
// manifests would.
func createSyncs(t *testing.T, c client.Client, ns string, names, sas []string) {
	t.Helper()
	errs := make([]error, len(names))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.Create(context.Background(), &v1alpha1.SecretSync{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: v1alpha1.SecretSyncSpec{
					SecretProviderClassName: classCNPG,
					ServiceAccountName:      sas[i%len(sas)],
					SecretObject: v1alpha1.SecretObject{Type: string(corev1.SecretTypeOpaque), Data: []v1alpha1.SecretObjectData{
						{SourcePath: "db-username", TargetKey: "username"},
						{SourcePath: "db-password", TargetKey: "password"},
					}},
				},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("creating SecretSync %s: %v", names[i], err)
		}
	}
}

// arrivals records when each of a set of names was first seen.
type arrivals struct {
	mu   sync.Mutex
	want map[string]bool
	last time.Time
	all  chan struct{}
	err  error
}

func newArrivals(names []string) *arrivals {
	a := &arrivals{want: map[string]bool{}, all: make(chan struct{})}
	for _, n := range names {
		a.want[n] = true
	}
	return a
}

func (a *arrivals) seen(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.want[name] {
		return
	}
	delete(a.want, name)
	a.last = time.Now()
	if len(a.want) == 0 {
		close(a.all)
	}
}

func (a *arrivals) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
}

// wait returns when the last name was seen.
func (a *arrivals) wait(t *testing.T, timeout time.Duration) time.Time {
	t.Helper()
	select {
	case <-a.all:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.last
	case <-time.After(timeout):
		a.mu.Lock()
		defer a.mu.Unlock()
		t.Fatalf("%d not seen within %s (watch error: %v)", len(a.want), timeout, a.err)
		return time.Time{}
	}
}

// watchSecrets notes when each named Secret first appears with both keys.
//
// cacheRevision: kube-apiserver 1.34 asks etcd for watch progress only from etcd 3.4.31
// or 3.5.13 on; with an older etcd its watch cache of a quiet resource stays at the
// revision of that resource's last event, so the watches here start from the cache's
// revision (a list at resourceVersion "0") rather than from etcd's.
func watchSecrets(t *testing.T, api *harness.APIServer, ns string, names []string) *arrivals {
	t.Helper()
	a := newArrivals(names)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The watch starts at the watch cache's own revision: a watch "from now" makes the API
	// server wait for its cache to reach etcd's revision, which it cannot confirm with
	// the etcd in use (see cacheRevision) and answers "Too large resource version".
	list, err := api.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := api.Client.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				a.fail(fmt.Errorf("secret watch: %v", ev.Object))
				return
			}
			if s, ok := ev.Object.(*corev1.Secret); ok && len(s.Data["username"]) > 0 && len(s.Data["password"]) > 0 {
				a.seen(s.Name)
			}
		}
	}()
	return a
}

// watchCreated notes when each named SecretSync first has a True Create condition.
func watchCreated(t *testing.T, c client.WithWatch, ns string, names []string) *arrivals {
	t.Helper()
	a := newArrivals(names)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var list v1alpha1.SecretSyncList
	if err := c.List(ctx, &list, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, &v1alpha1.SecretSyncList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				a.fail(fmt.Errorf("SecretSync watch: %v", ev.Object))
				return
			}
			ss, ok := ev.Object.(*v1alpha1.SecretSync)
			if !ok {
				continue
			}
			for _, cond := range ss.Status.Conditions {
				if cond.Type == v1alpha1.ConditionCreate && cond.Status == metav1.ConditionTrue {
					a.seen(ss.Name)
				}
			}
		}
	}()
	return a
}

// auditReader counts the audit log's events of secretmount's requests since the last take.
type auditReader struct {
	path   string
	offset int64
}

// auditEvent is the part of an audit.k8s.io/v1 Event the count needs.
type auditEvent struct {
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// settle waits until the audit log has not grown for quiet (at most a minute), so the
// requests of a phase are all in it before the phase is counted.
func (a *auditReader) settle(t *testing.T, quiet time.Duration) {
	t.Helper()
	size := func() int64 {
		fi, err := os.Stat(a.path)
		if err != nil {
			t.Fatalf("audit log: %v", err)
		}
		return fi.Size()
	}
	last, since := size(), time.Now()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n := size(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}

// take returns secretmount's completed writes and reads since the last take, by
// "verb resource[/subresource]"; a refused request is counted under its status code.
func (a *auditReader) take(t *testing.T) (writes, reads map[string]int) {
	t.Helper()
	writes, reads = map[string]int{}, map[string]int{}
	f, err := os.Open(a.path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, 0); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // a partial last line is read again next time
		}
		a.offset += int64(len(line))
		var ev auditEvent
		if json.Unmarshal(line, &ev) != nil || ev.Stage != "ResponseComplete" || !strings.HasPrefix(ev.UserAgent, syncUserAgent) {
			continue
		}
		key := ev.Verb
		if ev.ObjectRef != nil {
			key += " " + ev.ObjectRef.Resource
			if ev.ObjectRef.Subresource != "" {
				key += "/" + ev.ObjectRef.Subresource
			}
		}
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code >= 400 {
			key += fmt.Sprintf(" (%d)", ev.ResponseStatus.Code)
		}
		switch ev.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
			writes[key]++
		case "get", "list":
			reads[key]++
		}
	}
	return writes, reads
}

// scrapeSum sums the samples of a Prometheus endpoint whose line starts with prefix.
func scrapeSum(t *testing.T, url, prefix string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			sum += v
		}
	}
	return sum
}

func httpOK(url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// waitFor polls cond every 50 ms until it holds, failing t after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
