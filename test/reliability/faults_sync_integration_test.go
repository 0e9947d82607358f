//go:build integration

package reliability

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/sync"
	"github.com/secretmount/secretmount/test/harness"
)

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

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
