//go:build integration

package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

var crdsOnce gosync.Once

// env is one namespace on the shared API server with the guide's SecretProviderClass
// and ServiceAccount, a fake "aws" backend and a running sync controller scoped to it.
type env struct {
	api     *harness.APIServer
	ns      string
	client  client.Client // uncached, admin
	backend *fakeBackend
	rot     *rotation
	metrics *Metrics
	reg     *prometheus.Registry
	logs    *syncBuffer
}

// syncBuffer collects log lines from concurrent writers.
type syncBuffer struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) add(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s + "\n")
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startEnv(t *testing.T, backend provider.Provider) *env {
	t.Helper()
	return startEnvWith(t, "aws", func(*env) provider.Provider { return backend }, nil)
}

// startEnvWith is startEnv for a backend, registered as providerName, that needs the env
// (its API server), with annotations on the ServiceAccount.
func startEnvWith(t *testing.T, providerName string, newBackend func(*env) provider.Provider, saAnnotations map[string]string) *env {
	t.Helper()
	api := harness.SharedAPIServer(t)
	crdsOnce.Do(func() { api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds")) })
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "cnpg-sa", saAnnotations)

	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(api.RestConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{api: api, ns: ns, client: c, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	backend := newBackend(e)
	if fb, ok := backend.(*fakeBackend); ok {
		e.backend = fb
	}
	e.metrics, err = NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.createClass(t, "cnpg-aws-secretproviderclass.yaml", nil)

	logger := funcr.New(func(prefix, args string) { e.logs.add(prefix + " " + args) }, funcr.Options{Verbosity: 10})
	harness.RecordSecretValue(t, testPassword, testAccessKey, testSecretKey)
	t.Cleanup(func() { harness.RecordLeakText(t, harness.LeakLogs, e.logs.String()) })
	mgr, err := ctrl.NewManager(api.RestConfig(), ctrl.Options{
		Scheme:     scheme,
		Logger:     logger,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller: config.Controller{SkipNameValidation: ptrTo(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register(providerName, backend)
	e.rot, err = setup(mgr, Config{Registry: reg, RotationPollInterval: time.Hour, Namespace: ns, Metrics: e.metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return e
}

// createClass creates a fixture SecretProviderClass in the env's namespace.
func (e *env) createClass(t *testing.T, fixture string, mutate func(*secretsstorev1.SecretProviderClass)) *secretsstorev1.SecretProviderClass {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), fixture))
	if err != nil {
		t.Fatal(err)
	}
	spc := &secretsstorev1.SecretProviderClass{}
	if err := yaml.UnmarshalStrict(data, spc); err != nil {
		t.Fatal(err)
	}
	spc.Namespace = e.ns
	if mutate != nil {
		mutate(spc)
	}
	if err := e.client.Create(context.Background(), spc); err != nil {
		t.Fatalf("create SecretProviderClass: %v", err)
	}
	return spc
}

// tick runs one rotation tick, as the poll interval's ticker would.
func (e *env) tick(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.rot.tick(ctx)
}

// eventually polls cond until it holds, failing after a bound that only a broken
// controller reaches.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

func (e *env) secret(t *testing.T, name string) (*corev1.Secret, bool) {
	t.Helper()
	s, err := e.api.Client.CoreV1().Secrets(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	return s, true
}

func (e *env) waitSecret(t *testing.T, name string, cond func(*corev1.Secret) bool) *corev1.Secret {
	t.Helper()
	var got *corev1.Secret
	eventually(t, "secret "+name, func() (bool, string) {
		s, ok := e.secret(t, name)
		if !ok {
			var ss v1alpha1.SecretSync
			if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, &ss); err == nil {
				return false, fmt.Sprintf("absent; SecretSync conditions %+v", ss.Status.Conditions)
			}
			return false, "absent"
		}
		got = s
		return cond(s), fmt.Sprintf("type %s, keys %v, labels %v", s.Type, sortedKeys(s.Data), s.Labels)
	})
	return got
}

// metricValue sums the samples of a metric family whose labels include want.
func (e *env) metricValue(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			if m.Counter != nil {
				sum += m.Counter.GetValue()
			}
		}
	}
	return sum
}

// assertNoValues greps everything the env's controller produced that is not the Secret
// itself — log lines, events of the namespace, metrics, SecretSync status — for values.
func (e *env) assertNoValues(t *testing.T, values ...string) {
	t.Helper()
	var out strings.Builder
	out.WriteString(e.logs.String())
	events, err := e.api.Client.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		fmt.Fprintf(&out, "event %s %s %s\n", ev.Type, ev.Reason, ev.Message)
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	raw, err := e.api.Client.CoreV1().RESTClient().Get().AbsPath("/apis/secret-sync.x-k8s.io/v1alpha1/namespaces/" + e.ns + "/secretsyncs").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	for _, item := range list.Items {
		out.Write(item)
	}
	text := out.String()
	if len(text) < 100 {
		t.Fatalf("only %d bytes of logs, events and metrics to check: the check would prove nothing", len(text))
	}
	for i, v := range values {
		if at := strings.Index(text, v); at >= 0 {
			from, to := max(0, at-160), min(len(text), at+len(v)+40)
			masked := strings.ReplaceAll(text[from:to], v, "<value>")
			t.Errorf("secret value #%d appears in the controller's logs, events, metrics or status: ...%s...", i, masked)
		}
	}
	t.Logf("checked %d bytes of logs, %d events, %d metric families and %d SecretSyncs for %d values", len(e.logs.String()), len(events.Items), len(families), len(list.Items), len(values))
}

// fakeBackend is a provider for the guide's AWS class: it serves the two JSON documents
// from memory, counts reads per object and can be switched off.
type fakeBackend struct {
	mu    gosync.Mutex
	docs  map[string]map[string]string
	reads map[string]int
	down  bool
}

func newFakeBackend(pg, s3 map[string]string) *fakeBackend {
	return &fakeBackend{docs: map[string]map[string]string{
		"prod/cnpg/postgres-credentials": pg, "prod/cnpg/s3-credentials": s3,
	}, reads: map[string]int{}}
}

func (b *fakeBackend) Fetch(_ context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	if id.Tokens["sts.amazonaws.com"].Token == "" {
		return nil, fmt.Errorf("no web identity token for %s: %w", id.Key(), provider.ErrPermissionDenied)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		b.reads[o.Name]++
		if b.down {
			return nil, fmt.Errorf("secretsmanager unreachable reading %s: %w", o.Name, provider.ErrUnavailable)
		}
		doc, ok := b.docs[o.Name]
		if !ok {
			return nil, fmt.Errorf("%s: %w", o.Name, provider.ErrNotFound)
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		out[i] = providerclass.ObjectContent{Bytes: raw, Version: fmt.Sprintf("v%d", len(raw))}
	}
	return out, nil
}

func (b *fakeBackend) set(object, key, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.docs[object][key] = value
}

func (b *fakeBackend) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

func (b *fakeBackend) readsOf(object string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads[object]
}

// classOf reads the guide's class back from the API server.
func (e *env) classOf(t *testing.T) *secretsstorev1.SecretProviderClass {
	t.Helper()
	spc := &secretsstorev1.SecretProviderClass{}
	if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "postgres-aws-secrets"}, spc); err != nil {
		t.Fatal(err)
	}
	return spc
}
