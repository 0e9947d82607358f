//go:build integration

package reliability

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/sync"
	"github.com/secretmount/secretmount/test/harness"
)

// tokenRequests records the TokenRequests a client made, as "namespace/name".
type tokenRequests struct {
	mu   gosync.Mutex
	seen []string
}

type tokenRecorder struct {
	r    *tokenRequests
	next http.RoundTripper
}

func (t tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	// POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token
	p := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if req.Method == http.MethodPost && len(p) == 7 && p[2] == "namespaces" && p[4] == "serviceaccounts" && p[6] == "token" {
		t.r.mu.Lock()
		t.r.seen = append(t.r.seen, p[3]+"/"+p[5])
		t.r.mu.Unlock()
	}
	return t.next.RoundTrip(req)
}

func (r *tokenRequests) of(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.seen {
		if s == key {
			n++
		}
	}
	return n
}

// TestIsolationSecretSyncServiceAccountOfAnotherNamespace: a SecretSync names a
// ServiceAccount of another namespace, which exists there with a role that may read
// the secret. The real controller (real API server, AWS backend on moto) refuses it
// with condition reason UserInputValidationFailed and a Warning event of that reason,
// both naming the field and the other namespace; it asks no token for that
// ServiceAccount, makes no backend request and writes no Secret. A SecretSync naming
// the same-named ServiceAccount of its own namespace syncs, so the refusal is about the
// namespace alone. (sync's TestSecretSyncRefusals checks the condition of the
// "system:serviceaccount:" form with a fake backend.)
func TestIsolationSecretSyncServiceAccountOfAnotherNamespace(t *testing.T) {
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	moto := harness.SharedMoto(t)
	proxy := harness.NewCountingProxy(t, moto.Endpoint, isoAWSCaller)
	own, other := api.NewNamespace(t), api.NewNamespace(t)
	role := "arn:aws:iam::123456789012:role/isolation-sync"
	for _, ns := range []string{own, other} {
		api.CreateServiceAccount(t, ns, "app", map[string]string{aws.RoleAnnotation: role})
	}
	name, value := "isolation/"+own+"/sync", isoValue(t, "sync")
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := secretsmanager.NewFromConfig(moto.AWSConfig()).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value}); err != nil {
		cancel()
		t.Fatal(err)
	}
	api.ApplyManifest(t, `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: db, namespace: `+own+`}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: "`+name+`", objectType: secretsmanager, objectAlias: password}
`)

	scheme, err := sync.Scheme()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c, err := client.New(api.RestConfig(), client.Options{Scheme: scheme})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	roles, err := aws.NewServiceAccountRoles(api.Client, 0)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := roles.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	backend, err := aws.New(ctx, aws.Options{DefaultRegion: harness.MotoRegion, Endpoint: proxy.URL, Roles: roles, MaxAttempts: 1, Logger: harness.LeakLogger(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", backend)
	promReg := prometheus.NewRegistry()
	metrics, err := sync.NewMetrics(promReg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	tokens := &tokenRequests{}
	cfg := api.RestConfig()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return tokenRecorder{r: tokens, next: rt} })
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme,
		Logger:     harness.LeakLogger(t),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{own: {}}},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := sync.SetupWithManager(mgr, sync.Config{Registry: reg, RotationPollInterval: time.Hour, Namespace: own, Metrics: metrics}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		recordMetrics(t, promReg)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	for _, tc := range []struct{ name, serviceAccount string }{
		{"cross-sa", "system:serviceaccount:" + other + ":app"},
		{"cross-slash", other + "/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := isoSecretSync(own, tc.name, tc.serviceAccount)
			msg, reason := createAndWaitAny(t, c, ss)
			t.Logf("serviceAccountName %q: %s: %s", tc.serviceAccount, reason, msg)
			harness.RecordLeakText(t, harness.LeakErrors, msg+"\n")
			if reason == reasonAdmission {
				// The CRD's own schema refused the name: nothing reached the controller.
				if !strings.Contains(msg, "serviceAccountName") {
					t.Errorf("admission refusal %q does not name the field", msg)
				}
				return
			}
			if reason != v1alpha1.ReasonUserInputValidationFailed {
				t.Errorf("reason %s, want %s: %s", reason, v1alpha1.ReasonUserInputValidationFailed, msg)
			}
			for _, want := range []string{"spec.serviceAccountName", `"` + other + `"`} {
				if !strings.Contains(msg, want) {
					t.Errorf("condition message %q does not name %s", msg, want)
				}
			}
			ev := waitEvent(t, api, own, tc.name)
			if ev.Type != corev1.EventTypeWarning || ev.Reason != v1alpha1.ReasonUserInputValidationFailed ||
				!strings.Contains(ev.Message, "spec.serviceAccountName") || !strings.Contains(ev.Message, other) {
				t.Errorf("event %s %s %q, want a Warning %s naming the field and namespace %s", ev.Type, ev.Reason, ev.Message, v1alpha1.ReasonUserInputValidationFailed, other)
			}
			if _, err := api.Client.CoreV1().Secrets(own).Get(context.Background(), tc.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("Secret %s/%s: %v, want none written", own, tc.name, err)
			}
		})
	}
	if n := tokens.of(other + "/app"); n != 0 {
		t.Errorf("%d TokenRequests for %s/app, want none", n, other)
	}
	if got := proxy.Take(); len(got) != 0 {
		t.Errorf("the refused SecretSyncs reached the backend: %v", got)
	}

	t.Run("its own namespace's ServiceAccount syncs", func(t *testing.T) {
		ss := isoSecretSync(own, "local", "app")
		msg, reason := createAndWaitAny(t, c, ss)
		if reason != v1alpha1.ReasonCreateSucceeded {
			t.Fatalf("reason %s: %s", reason, msg)
		}
		s, err := api.Client.CoreV1().Secrets(own).Get(context.Background(), "local", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Data["password"]) != value {
			t.Errorf("Secret %s/local holds %d bytes, want the seeded value", own, len(s.Data["password"]))
		}
		if tokens.of(own+"/app") == 0 {
			t.Errorf("no TokenRequest for %s/app", own)
		}
	})
}

func isoSecretSync(ns, name, serviceAccount string) *v1alpha1.SecretSync {
	return &v1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SecretSyncSpec{
			SecretProviderClassName: "db",
			ServiceAccountName:      serviceAccount,
			SecretObject: v1alpha1.SecretObject{Type: "Opaque",
				Data: []v1alpha1.SecretObjectData{{SourcePath: "password", TargetKey: "password"}}},
		},
	}
}

// createAndWaitAny creates ss and returns the API server's refusal, or the controller's
// Create condition (true or false) once it has one.
func createAndWaitAny(t *testing.T, c client.Client, ss *v1alpha1.SecretSync) (message, reason string) {
	t.Helper()
	message, reason, _ = createAndWaitCondition(t, c, ss)
	return message, reason
}

// createAndWaitCondition creates ss and returns the API server's refusal, or the
// controller's Create condition once it has one, and whether that condition says
// synced. The test's deadline bounds the wait.
func createAndWaitCondition(t *testing.T, c client.Client, ss *v1alpha1.SecretSync) (message, reason string, synced bool) {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, ss); err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) && apierrors.IsInvalid(err) {
			return err.Error(), reasonAdmission, false
		}
		t.Fatalf("create SecretSync: %v", err)
	}
	key := client.ObjectKeyFromObject(ss)
	for {
		var got v1alpha1.SecretSync
		if err := c.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionCreate); cond != nil {
			return cond.Message, cond.Reason, cond.Status == metav1.ConditionTrue
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvent waits for an event about SecretSync ns/name; the test's deadline bounds it.
func waitEvent(t *testing.T, api *harness.APIServer, ns, name string) corev1.Event {
	t.Helper()
	sel := fields.SelectorFromSet(fields.Set{"involvedObject.name": name, "involvedObject.kind": "SecretSync"}).String()
	for {
		evs, err := api.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Items) > 0 {
			return evs.Items[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordMetrics records the registry's exposition for the leak scan.
func recordMetrics(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Errorf("gathering metrics: %v", err)
		return
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Errorf("encoding metrics: %v", err)
			return
		}
	}
	harness.RecordLeakText(t, harness.LeakMetrics, b.String())
}
