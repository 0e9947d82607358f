package aws

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

func TestConcurrentFetchesShareOneSTSCallAndOneReadPerObject(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putSecret("us-east-1", "prod/cnpg/postgres-credentials", `{"username":"app","password":"x"}`)
	env.fake.putSecret("us-east-1", "prod/cnpg/s3-credentials", `{"accessKeyId":"a","secretAccessKey":"b"}`)
	env.fake.putParam("us-east-1", "/cnpg/extra", "SecureString", "extra")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("prod/cnpg/postgres-credentials"),
		secretObject("prod/cnpg/s3-credentials"), parameterObject("/cnpg/extra"))

	const pods = 50
	var wg sync.WaitGroup
	errs := make(chan error, pods)
	start := make(chan struct{})
	for range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, err := env.backend.Fetch(context.Background(), plan, identity("app", "web"))
			if err == nil && string(got[2].Bytes) != "extra" {
				err = errors.New("wrong content")
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
	}
	for action, want := range map[string]int{
		"AssumeRoleWithWebIdentity": 1, "BatchGetSecretValue": 1, "GetParameters": 1,
		"GetSecretValue": 0, "DescribeSecret": 0,
	} {
		if n := env.fake.count(action); n != want {
			t.Errorf("%s calls = %d, want %d", action, n, want)
		}
	}
}

func TestIdentitiesNeverShareCredentialsOrContent(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putSecret("us-east-1", "shared", "s")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("shared"))

	mustFetch(t, env.backend, plan, identity("app", "web"))
	mustFetch(t, env.backend, plan, identity("app", "batch"))
	if n := env.fake.count("AssumeRoleWithWebIdentity"); n != 2 {
		t.Errorf("STS calls = %d, want 2 (one per ServiceAccount)", n)
	}
	if n := env.fake.count("GetSecretValue"); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2 (no content shared)", n)
	}
	keys := env.fake.keyCount()
	if len(keys) != 2 || keys["ASIA1"] != 1 || keys["ASIA2"] != 1 {
		t.Errorf("signing keys = %v, want ASIA1 and ASIA2 once each", keys)
	}
	if got := env.fake.tokens; len(got) != 2 || !strings.Contains(tokenClaims(t, got[0]), ":web") || !strings.Contains(tokenClaims(t, got[1]), ":batch") {
		t.Errorf("STS received the wrong tokens")
	}
}

func tokenClaims(t *testing.T, token string) string {
	t.Helper()
	sub, err := tokenSubject(token)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestCredentialsReusedUntilShortlyBeforeExpiry(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putSecret("us-east-1", "db", "v")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("db"))
	id := identity("app", "web")

	mustFetch(t, env.backend, plan, id)
	env.clock.Advance(50 * time.Minute) // the fake's credentials last an hour
	// A rotated token of the same ServiceAccount reuses the credentials.
	rotated := id
	rotated.Tokens = map[string]provider.Token{stsAudience: {Token: fakeJWT("system:serviceaccount:app:web") + "x"}}
	mustFetch(t, env.backend, plan, rotated)
	if n := env.fake.count("AssumeRoleWithWebIdentity"); n != 1 {
		t.Fatalf("STS calls = %d before the renewal margin, want 1", n)
	}
	env.clock.Advance(6 * time.Minute) // 4 minutes before expiry: inside the 5-minute margin
	mustFetch(t, env.backend, plan, id)
	if n := env.fake.count("AssumeRoleWithWebIdentity"); n != 2 {
		t.Errorf("STS calls = %d after the renewal margin, want 2", n)
	}
}

func TestIdentityFailures(t *testing.T) {
	otherSubject := identity("app", "web")
	otherSubject.Tokens[stsAudience] = provider.Token{Token: fakeJWT("system:serviceaccount:app:batch")}
	notJWT := identity("app", "web")
	notJWT.Tokens[stsAudience] = provider.Token{Token: "opaque"}
	noToken := identity("app", "web")
	noToken.Tokens = nil

	tests := []struct {
		name      string
		id        provider.Identity
		stsFail   string
		want      error
		wantInMsg string
	}{
		{"no token for the audience", noToken, "", provider.ErrPermissionDenied, "sts.amazonaws.com"},
		{"token of another ServiceAccount", otherSubject, "", provider.ErrPermissionDenied, "app/web"},
		{"token not a JWT", notJWT, "", provider.ErrPermissionDenied, "not a JWT"},
		{"no role annotation", identity("app", "none"), "", provider.ErrPermissionDenied, RoleAnnotation},
		{"unknown ServiceAccount", identity("app", "ghost"), "", provider.ErrPermissionDenied, "app/ghost"},
		{"STS rejects the token", identity("app", "web"), "InvalidIdentityToken", provider.ErrPermissionDenied, "assume role"},
		{"STS denies the role", identity("app", "web"), "AccessDenied", provider.ErrPermissionDenied, "role/web"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			env.fake.putSecret("us-east-1", "db", "v")
			if tc.stsFail != "" {
				env.fake.failWith("AssumeRoleWithWebIdentity", 400, tc.stsFail)
			}
			_, err := env.backend.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, secretObject("db")), tc.id)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantInMsg)
			}
			if n := env.fake.count("GetSecretValue"); n != 0 {
				t.Errorf("fetched %d times without credentials", n)
			}
		})
	}
}

// tokenSource mints tokens for identities that carry none (as the sync controller does).
type tokenSource struct{ audiences []string }

func (s *tokenSource) Token(_ context.Context, id provider.Identity, audience string) (provider.Token, error) {
	s.audiences = append(s.audiences, audience)
	return provider.Token{Token: fakeJWT("system:serviceaccount:" + id.Namespace + ":" + id.ServiceAccount)}, nil
}

func TestTokenSourceWhenIdentityCarriesNoToken(t *testing.T) {
	src := &tokenSource{}
	env := newTestEnv(t, func(o *Options) { o.Tokens = src })
	env.fake.putSecret("us-east-1", "db", "v")
	id := identity("app", "web")
	id.Tokens = nil
	mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, secretObject("db")), id)
	if len(src.audiences) != 1 || src.audiences[0] != stsAudience {
		t.Errorf("token source asked for %v, want [%s]", src.audiences, stsAudience)
	}
}

func TestAmbientCredentialsOnlyWhenAllowed(t *testing.T) {
	for _, allow := range []bool{false, true} {
		env := newTestEnv(t, func(o *Options) { o.AllowAmbientCredentials = allow })
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENT")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
		// New read the environment before these were set: build again.
		b, err := New(context.Background(), env.backend.opts)
		if err != nil {
			t.Fatal(err)
		}
		env.fake.putSecret("us-east-1", "db", "v")
		id := provider.Identity{} // render: no pod, no token
		_, err = b.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, secretObject("db")), id)
		if allow {
			if err != nil {
				t.Errorf("allowed ambient: %v", err)
			}
			if env.fake.keyCount()["AKIAAMBIENT"] != 1 {
				t.Errorf("ambient key not used: %v", env.fake.keyCount())
			}
			continue
		}
		if !errors.Is(err, provider.ErrPermissionDenied) {
			t.Errorf("ambient not allowed: err = %v, want ErrPermissionDenied", err)
		}
		if env.fake.count("GetSecretValue") != 0 {
			t.Errorf("node credentials were used for a fetch")
		}
	}
	// A pod identity with a token never falls back to ambient credentials, even when allowed.
	env := newTestEnv(t, func(o *Options) { o.AllowAmbientCredentials = true })
	env.fake.putSecret("us-east-1", "db", "v")
	env.fake.failWith("AssumeRoleWithWebIdentity", 400, "AccessDenied")
	if _, err := env.backend.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, secretObject("db")), identity("app", "web")); !errors.Is(err, provider.ErrPermissionDenied) {
		t.Errorf("err = %v, want ErrPermissionDenied", err)
	}
}

func TestPodIdentityAgent(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "AccessDeniedException", "message": "no token"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": "ASIAPODIDENTITY", "SecretAccessKey": "s", "Token": "t",
			"Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	t.Cleanup(agent.Close)
	env := newTestEnv(t, func(o *Options) { o.PodIdentityAgentEndpoint = agent.URL + "/v1/credentials" })
	env.fake.putSecret("us-east-1", "db", "v")
	plan := awsPlan(providerclass.AWSParameters{UsePodIdentity: true}, secretObject("db"))

	id := identity("app", "web")
	token := fakeJWT("system:serviceaccount:app:web")
	id.Tokens[podIdentityAudience] = provider.Token{Token: token}
	mustFetch(t, env.backend, plan, id)
	mustFetch(t, env.backend, plan, id)
	if len(auths) != 1 || auths[0] != token {
		t.Errorf("agent calls = %d (want 1, with the pod token as Authorization)", len(auths))
	}
	if env.fake.keyCount()["ASIAPODIDENTITY"] != 1 {
		t.Errorf("pod identity credentials not used: %v", env.fake.keyCount())
	}
	if n := env.fake.count("AssumeRoleWithWebIdentity"); n != 0 {
		t.Errorf("pod identity called STS %d times", n)
	}

	noToken := identity("app", "web") // only the sts audience
	_, err := env.backend.Fetch(context.Background(), plan, noToken)
	if !errors.Is(err, provider.ErrPermissionDenied) || !strings.Contains(err.Error(), podIdentityAudience) {
		t.Errorf("err = %v, want ErrPermissionDenied naming %s", err, podIdentityAudience)
	}
}

func TestEndpointFromStandardVariables(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.Endpoint = "" })
	t.Setenv("AWS_ENDPOINT_URL", env.fake.URL())
	b, err := New(context.Background(), env.backend.opts)
	if err != nil {
		t.Fatal(err)
	}
	env.fake.putSecret("us-east-1", "db", "via env")
	got := mustFetch(t, b, awsPlan(providerclass.AWSParameters{}, secretObject("db")), identity("app", "web"))
	if string(got[0].Bytes) != "via env" {
		t.Errorf("got %q", got[0].Bytes)
	}

	// The service-specific variable wins over the general one; the flag over both.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", env.fake.URL())
	t.Setenv("AWS_ENDPOINT_URL_STS", env.fake.URL())
	b, err = New(context.Background(), env.backend.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, secretObject("db")), identity("app", "batch")); err != nil {
		t.Errorf("service-specific endpoint: %v", err)
	}
}

func TestTokenSubject(t *testing.T) {
	tests := []struct {
		token, want string
		ok          bool
	}{
		{fakeJWT("system:serviceaccount:ns:sa"), "system:serviceaccount:ns:sa", true},
		{"a.b", "", false},
		{"a.!!!.c", "", false},
		{"a.bm90IGpzb24.c", "", false}, // "not json"
		{fakeJWT(""), "", false},
	}
	for _, tc := range tests {
		got, err := tokenSubject(tc.token)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("tokenSubject(%q) = %q, %v; want %q ok=%v", tc.token, got, err, tc.want, tc.ok)
		}
	}
}

func TestSessionName(t *testing.T) {
	long := strings.Repeat("n", 80)
	tests := map[string]provider.Identity{
		"secretmount.app.web":      {Namespace: "app", ServiceAccount: "web"},
		"secretmount":              {},
		"secretmount." + long[:52]: {Namespace: long, ServiceAccount: "x"},
		"secretmount.a-b.c-d":      {Namespace: "a:b", ServiceAccount: "c d"},
	}
	for want, id := range tests {
		if got := sessionName(id); got != want {
			t.Errorf("sessionName(%v) = %q, want %q", id, got, want)
		}
	}
}

func TestRejectedCredentialsAreMintedAgain(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putSecret("us-east-1", "db", "v")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("db"))
	id := identity("app", "web")
	mustFetch(t, env.backend, plan, id)

	env.fake.failWith("DescribeSecret", 400, "ExpiredTokenException")
	env.fake.failWith("GetSecretValue", 400, "ExpiredTokenException")
	env.clock.Advance(time.Minute)
	if _, err := env.backend.Fetch(context.Background(), plan, id); !errors.Is(err, provider.ErrPermissionDenied) {
		t.Fatalf("err = %v, want ErrPermissionDenied", err)
	}
	env.fake.clearFailures()
	env.clock.Advance(time.Minute)
	mustFetch(t, env.backend, plan, id)
	if n := env.fake.count("AssumeRoleWithWebIdentity"); n != 2 {
		t.Errorf("STS calls = %d, want 2 (rejected credentials minted again)", n)
	}
}
