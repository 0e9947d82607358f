package aws

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// roleMap is a RoleResolver over a fixed map "namespace/name" → role ARN.
type roleMap map[string]string

func (m roleMap) RoleARN(_ context.Context, ns, name string) (string, error) {
	role, ok := m[ns+"/"+name]
	if !ok {
		return "", fmt.Errorf("ServiceAccount %s/%s not found: %w", ns, name, provider.ErrPermissionDenied)
	}
	return role, nil
}

// isolateEnv keeps the developer's AWS settings out of unit tests.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_STS", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_MAX_ATTEMPTS"} {
		t.Setenv(k, "") // restores the old value after the test
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

type testEnv struct {
	fake    *fakeAWS
	clock   *clock
	backend *Backend
}

func newTestEnv(t *testing.T, tweak func(*Options)) *testEnv {
	t.Helper()
	isolateEnv(t)
	fake := newFakeAWS(t)
	clk := newClock()
	fake.now = clk.Now
	opts := Options{
		DefaultRegion: "us-east-1",
		Endpoint:      fake.URL(),
		Roles: roleMap{
			"app/web":   "arn:aws:iam::123456789012:role/web",
			"app/batch": "arn:aws:iam::123456789012:role/batch",
			"app/none":  "",
		},
		MaxAttempts: 2,
		MaxBackoff:  time.Millisecond,
		Now:         clk.Now,
	}
	if tweak != nil {
		tweak(&opts)
	}
	b, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{fake: fake, clock: clk, backend: b}
}

func identity(ns, sa string) provider.Identity {
	return provider.Identity{
		Namespace: ns, ServiceAccount: sa, PodName: sa + "-pod", PodUID: "uid-" + sa,
		Tokens: map[string]provider.Token{
			stsAudience: {Token: fakeJWT("system:serviceaccount:" + ns + ":" + sa), ExpiresAt: time.Now().Add(time.Hour)},
		},
	}
}

func awsPlan(params providerclass.AWSParameters, objects ...providerclass.Object) *providerclass.Plan {
	for i := range objects {
		if objects[i].Field == "" {
			objects[i].Field = fmt.Sprintf("objects[%d]", i)
		}
	}
	return &providerclass.Plan{
		Class:    types.NamespacedName{Namespace: "app", Name: "spc"},
		Provider: "aws",
		Dialect:  providerclass.DialectAWS,
		AWS:      &params,
		Objects:  objects,
	}
}

func secretObject(name string) providerclass.Object {
	return providerclass.Object{Name: name, Type: typeSecretsManager, File: name}
}

func parameterObject(name string) providerclass.Object {
	return providerclass.Object{Name: name, Type: typeParameter, File: name}
}

func mustFetch(t *testing.T, b *Backend, plan *providerclass.Plan, id provider.Identity) []providerclass.ObjectContent {
	t.Helper()
	got, err := b.Fetch(context.Background(), plan, id)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(got) != len(plan.Objects) {
		t.Fatalf("Fetch returned %d contents for %d objects", len(got), len(plan.Objects))
	}
	return got
}
