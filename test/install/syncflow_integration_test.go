//go:build integration

package install

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/sync"
	"github.com/secretmount/secretmount/test/harness"
)

// staticBackend answers every object of a plan with fixed bytes: the test is about
// what the sync controller may do in the cluster, not about a secret store.
type staticBackend struct{ value []byte }

func (b staticBackend) Fetch(_ context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	if len(id.Tokens) == 0 {
		return nil, fmt.Errorf("no token minted for %s: %w", id.Key(), provider.ErrPermissionDenied)
	}
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i := range out {
		out[i] = providerclass.ObjectContent{Bytes: b.value, Version: "1"}
	}
	return out, nil
}

var secretSyncs = schema.GroupVersionResource{Group: "secret-sync.x-k8s.io", Version: "v1alpha1", Resource: "secretsyncs"}

// TestRBACSyncControllerRuns runs the real sync controller (leader election, informers,
// TokenRequest, server-side apply, status, events) as the chart's sync ServiceAccount
// with the chart's default roles, and sees a SecretSync become a Secret.
func TestRBACSyncControllerRuns(t *testing.T) {
	a := harness.SharedAPIServer(t)
	ns, _ := installChart(t, "sync-flow", nil)
	app := a.NewNamespace(t)
	seedApp(t, a, app)

	reg := provider.NewRegistry()
	reg.Register("vault", staticBackend{value: []byte("rbac-flow-value")})
	metrics, err := sync.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sync.Run(ctx, sync.Options{
			Config:                  sync.Config{Registry: reg, RotationPollInterval: time.Hour, Metrics: metrics},
			RestConfig:              as(a.RestConfig(), ns, "sync-flow-secretmount-sync"),
			MetricsAddress:          "0",
			HealthAddress:           "0",
			LeaderElection:          true,
			LeaderElectionID:        "secretmount-sync",
			LeaderElectionNamespace: ns,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("sync controller: %v", err)
		}
	})

	ss := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "secret-sync.x-k8s.io/v1alpha1",
		"kind":       "SecretSync",
		"metadata":   map[string]any{"name": "db-credentials", "namespace": app},
		"spec": map[string]any{
			"secretProviderClassName": "db",
			"serviceAccountName":      "app",
			"secretObject": map[string]any{
				"type": "Opaque",
				"data": []any{map[string]any{"sourcePath": "password", "targetKey": "password"}},
			},
		},
	}}
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ccancel()
	if _, err := a.Dynamic.Resource(secretSyncs).Namespace(app).Create(cctx, ss, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Bounded wait for the controller to do its work; no assertion on how long it took.
	deadline := time.Now().Add(90 * time.Second)
	for {
		s, err := a.Client.CoreV1().Secrets(app).Get(cctx, "db-credentials", metav1.GetOptions{})
		if err == nil && string(s.Data["password"]) == "rbac-flow-value" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sync controller stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			got, _ := a.Dynamic.Resource(secretSyncs).Namespace(app).Get(context.Background(), "db-credentials", metav1.GetOptions{})
			t.Fatalf("no synced Secret with the chart's RBAC (last error %v); SecretSync status: %v", err, got.Object["status"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	lease, err := a.Client.CoordinationV1().Leases(ns).Get(context.Background(), "secretmount-sync", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		t.Errorf("leader lease in %s: %v", ns, err)
	}
}
