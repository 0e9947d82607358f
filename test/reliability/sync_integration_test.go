//go:build integration

package reliability

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/prometheus/client_golang/prometheus"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/sync"
	"github.com/secretmount/secretmount/test/harness"
)

// TestSecretSyncBadInput creates each secretsync case of the corpus, one namespace per
// case, with the real controller running against a real API server: the API server
// refuses it naming the field, or the controller sets the Create condition with the
// case's reason and a message naming the field. No Secret is written in either case.
func TestSecretSyncBadInput(t *testing.T) {
	var cases []badCase
	for _, c := range loadCorpus(t) {
		if c.Boundary == boundarySync {
			cases = append(cases, c)
		}
	}
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	scheme, err := sync.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(api.RestConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	closed := "http://" + closedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	awsBackend, err := aws.New(ctx, aws.Options{DefaultRegion: "us-east-1", Endpoint: closed, Roles: roles{}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	vaultBackend, err := vault.New(vault.Options{DefaultAddress: closed, Keys: vault.StaticKey("reliability-key-0123456789abcdef"), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", awsBackend)
	reg.Register("vault", vaultBackend)
	metrics, err := sync.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	skip := true
	mgr, err := ctrl.NewManager(api.RestConfig(), ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sync.SetupWithManager(mgr, sync.Config{Registry: reg, RotationPollInterval: time.Hour, Metrics: metrics}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	counts := map[string]int{}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			ns := api.NewNamespace(t)
			api.CreateServiceAccount(t, ns, "sa", nil)
			if spc := spcOf(tc); spc != nil {
				spc.Namespace = ns
				if err := c.Create(context.Background(), spc); err != nil {
					t.Fatalf("create SecretProviderClass: %v", err)
				}
			}
			raw, err := json.Marshal(tc.Sync)
			if err != nil {
				t.Fatal(err)
			}
			ss := &v1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "target"}}
			if err := json.Unmarshal(raw, &ss.Spec); err != nil {
				t.Fatalf("case sync: %v", err)
			}
			msg, reason := createAndWait(t, c, ss)
			t.Logf("%s: %s", reason, msg)
			if reason != tc.Want.Reason {
				t.Errorf("reason %s, want %s: %s", reason, tc.Want.Reason, msg)
			}
			if !strings.Contains(msg, tc.Want.Field) {
				t.Errorf("message does not name %q: %s", tc.Want.Field, msg)
			}
			var secrets corev1.SecretList
			if err := c.List(context.Background(), &secrets, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets.Items {
				if s.Type != corev1.SecretTypeServiceAccountToken {
					t.Errorf("Secret %s written for a refused SecretSync", s.Name)
				}
			}
			counts[reason]++
		})
	}
	t.Logf("SecretSync cases by outcome: %v", counts)
}

// createAndWait creates ss and returns the API server's refusal, or the controller's
// Create condition once it has one; a SecretSync that synced fails t.
func createAndWait(t *testing.T, c client.Client, ss *v1alpha1.SecretSync) (message, reason string) {
	t.Helper()
	message, reason, synced := createAndWaitCondition(t, c, ss)
	if synced {
		t.Fatalf("SecretSync was synced: %s", message)
	}
	return message, reason
}
