package vault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

var testKey = StaticKey(strings.Repeat("k", 32))

// clock is a settable time source; tests move it instead of sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestBackend(t *testing.T, f *fakeVault, c *clock, mutate ...func(*Options)) *Backend {
	t.Helper()
	opts := Options{
		DefaultAddress: f.addr(),
		Keys:           testKey,
		RetryWait:      time.Millisecond,
		Now:            c.Now,
		CoalesceWindow: -1,
	}
	for _, m := range mutate {
		m(&opts)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// plan plans a Vault SecretProviderClass in namespace "apps" with the real planner.
func plan(t testing.TB, objects string, params ...string) *providerclass.Plan {
	t.Helper()
	p := map[string]string{"roleName": "app", "objects": objects}
	for i := 0; i+1 < len(params); i += 2 {
		p[params[i]] = params[i+1]
	}
	spc := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "spc"},
		Spec:       secretsstorev1.SecretProviderClassSpec{Provider: "vault", Parameters: p},
	}
	pl, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: "apps", ServiceAccount: "app-sa", PodName: "pod"})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	return pl
}

func identity(ns, sa, jwt string) provider.Identity {
	return provider.Identity{Namespace: ns, ServiceAccount: sa, Tokens: map[string]provider.Token{"vault": {Token: jwt}}}
}

func mustFetch(t *testing.T, b *Backend, p *providerclass.Plan, id provider.Identity) []providerclass.ObjectContent {
	t.Helper()
	got, err := b.Fetch(context.Background(), p, id)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(got) != len(p.Objects) {
		t.Fatalf("Fetch returned %d contents for %d objects", len(got), len(p.Objects))
	}
	return got
}

func assertKind(t *testing.T, err, kind error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v: want kind %v", err, kind)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}
