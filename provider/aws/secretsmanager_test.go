package aws

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

func TestSecretsManagerContent(t *testing.T) {
	env := newTestEnv(t, nil)
	f := env.fake
	binary := []byte{0x00, 0xff, '\n', 0x80}
	jsonValue := `{"username":"app","password":"p4ss\n"}`
	f.putSecret("us-east-1", "prod/json", jsonValue)
	binID := f.putSecretVersion("us-east-1", "prod/binary", nil, binary, "AWSCURRENT")
	oldID := f.putSecret("us-east-1", "prod/rotated", "old")
	f.putSecret("us-east-1", "prod/rotated", "new")
	pendingValue := "pending"
	pendingID := f.putSecretVersion("us-east-1", "prod/staged", &pendingValue, nil, "AWSPENDING")
	f.putSecret("us-east-1", "prod/staged", "current")
	arnValue := "by arn"
	f.putSecretVersion("us-east-1", "prod/arn", &arnValue, nil, "AWSCURRENT")
	arn := f.lookupSecret("us-east-1", "prod/arn").arn

	tests := []struct {
		name        string
		obj         providerclass.Object
		want        []byte
		wantVersion string
	}{
		{"string as is", secretObject("prod/json"), []byte(jsonValue), "v1-prod-json"},
		{"binary raw", secretObject("prod/binary"), binary, binID},
		{"objectVersion", providerclass.Object{Name: "prod/rotated", Type: typeSecretsManager, Version: oldID}, []byte("old"), oldID},
		{"objectVersionLabel", providerclass.Object{Name: "prod/staged", Type: typeSecretsManager, VersionLabel: "AWSPENDING"}, []byte("pending"), pendingID},
		{"full ARN", providerclass.Object{Name: arn, Type: typeSecretsManager}, []byte("by arn"), "v1-prod-arn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, tc.obj), identity("app", "web"))
			if !bytes.Equal(got[0].Bytes, tc.want) {
				t.Errorf("bytes = %q, want %q", got[0].Bytes, tc.want)
			}
			if got[0].Version != tc.wantVersion {
				t.Errorf("version = %q, want %q", got[0].Version, tc.wantVersion)
			}
			if got[0].Document != nil {
				t.Errorf("Document = %q, want nil (extractions read Bytes)", got[0].Document)
			}
		})
	}
}

func TestSecretsManagerBatchesSeveralSecrets(t *testing.T) {
	env := newTestEnv(t, nil)
	var objects []providerclass.Object
	for _, n := range []string{"a", "b", "c"} {
		env.fake.putSecret("us-east-1", "batch/"+n, "value-"+n)
		objects = append(objects, secretObject("batch/"+n))
	}
	got := mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, objects...), identity("app", "web"))
	for i, n := range []string{"a", "b", "c"} {
		if string(got[i].Bytes) != "value-"+n {
			t.Errorf("object %d = %q, want %q", i, got[i].Bytes, "value-"+n)
		}
	}
	if n := env.fake.count("BatchGetSecretValue"); n != 1 {
		t.Errorf("BatchGetSecretValue calls = %d, want 1", n)
	}
	if n := env.fake.count("GetSecretValue"); n != 0 {
		t.Errorf("GetSecretValue calls = %d, want 0", n)
	}
}

func TestSecretsManagerBatchDeniedFallsBack(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.failWith("BatchGetSecretValue", 400, "AccessDeniedException")
	env.fake.putSecret("us-east-1", "x", "1")
	env.fake.putSecret("us-east-1", "y", "2")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("x"), secretObject("y"))

	got := mustFetch(t, env.backend, plan, identity("app", "web"))
	if string(got[0].Bytes) != "1" || string(got[1].Bytes) != "2" {
		t.Fatalf("got %q, %q", got[0].Bytes, got[1].Bytes)
	}
	if n := env.fake.count("GetSecretValue"); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
	// A new object set (nothing remembered) must not ask for the denied batch again.
	env.fake.putSecret("us-east-1", "z", "3")
	env.fake.putSecret("us-east-1", "w", "4")
	mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, secretObject("z"), secretObject("w")), identity("app", "web"))
	if n := env.fake.count("BatchGetSecretValue"); n != 1 {
		t.Errorf("BatchGetSecretValue calls = %d, want 1 (denial remembered)", n)
	}
	// Another identity has its own permissions: it tries the batch itself.
	mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, secretObject("z"), secretObject("w")), identity("app", "batch"))
	if n := env.fake.count("BatchGetSecretValue"); n != 2 {
		t.Errorf("BatchGetSecretValue calls = %d, want 2", n)
	}
}

func TestSecretsManagerBatchPerSecretErrorGivesThatSecretsError(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putSecret("us-east-1", "present", "1")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("present"), secretObject("missing"))
	_, err := env.backend.Fetch(context.Background(), plan, identity("app", "web"))
	if !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{`"missing"`, "objects[1]", "us-east-1", "app/spc"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSecretsManagerRefreshSkipsUnchanged(t *testing.T) {
	env := newTestEnv(t, nil)
	env.fake.putSecret("us-east-1", "db", "v1")
	pinnedID := env.fake.putSecret("us-east-1", "pinned", "p1")
	plan := awsPlan(providerclass.AWSParameters{}, secretObject("db"),
		providerclass.Object{Name: "pinned", Type: typeSecretsManager, Version: pinnedID})
	id := identity("app", "web")

	mustFetch(t, env.backend, plan, id)
	gets := func() int { return env.fake.count("GetSecretValue") + env.fake.count("BatchGetSecretValue") }
	if gets() != 2 {
		t.Fatalf("first fetch made %d reads, want 2", gets())
	}

	env.clock.Advance(time.Minute)
	got := mustFetch(t, env.backend, plan, id)
	if string(got[0].Bytes) != "v1" || string(got[1].Bytes) != "p1" {
		t.Fatalf("refresh got %q, %q", got[0].Bytes, got[1].Bytes)
	}
	if gets() != 2 {
		t.Errorf("unchanged refresh read values again: %d reads", gets())
	}
	if n := env.fake.count("DescribeSecret"); n != 1 {
		t.Errorf("DescribeSecret calls = %d, want 1 (none for the pinned version)", n)
	}

	newID := env.fake.putSecret("us-east-1", "db", "v2")
	env.clock.Advance(time.Minute)
	got = mustFetch(t, env.backend, plan, id)
	if string(got[0].Bytes) != "v2" || got[0].Version != newID {
		t.Errorf("after rotation got %q version %q, want v2 version %q", got[0].Bytes, got[0].Version, newID)
	}
	if gets() != 3 {
		t.Errorf("rotation made %d reads in total, want 3", gets())
	}

	// Without DescribeSecret permission the refresh still works: it reads the value.
	env.fake.failWith("DescribeSecret", 400, "AccessDeniedException")
	env.clock.Advance(time.Minute)
	got = mustFetch(t, env.backend, plan, id)
	if string(got[0].Bytes) != "v2" {
		t.Errorf("refresh without DescribeSecret got %q", got[0].Bytes)
	}
}

func TestSecretsManagerErrors(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		code         string
		want         error
		wantAttempts int
	}{
		{"access denied", 400, "AccessDeniedException", provider.ErrPermissionDenied, 1},
		{"kms denied", 400, "DecryptionFailure", provider.ErrPermissionDenied, 1},
		{"not found", 400, "ResourceNotFoundException", provider.ErrNotFound, 1},
		{"invalid request", 400, "InvalidRequestException", provider.ErrInvalid, 1},
		{"throttled", 400, "ThrottlingException", provider.ErrUnavailable, 2},
		{"server error", 500, "InternalServiceError", provider.ErrUnavailable, 2},
		{"bare 503", 503, "", provider.ErrUnavailable, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			env.fake.putSecret("us-east-1", "prod/db", "hunter2-value")
			env.fake.failWith("GetSecretValue", tc.status, tc.code)
			plan := awsPlan(providerclass.AWSParameters{}, secretObject("prod/db"))
			_, err := env.backend.Fetch(context.Background(), plan, identity("app", "web"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, want := range []string{`"prod/db"`, "objects[0]", "us-east-1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals the value: %q", err)
			}
			if n := env.fake.count("GetSecretValue"); n != tc.wantAttempts {
				t.Errorf("attempts = %d, want %d", n, tc.wantAttempts)
			}
		})
	}
}

func TestSecretsManagerFailover(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		code        string
		wantValue   string
		wantErr     error
		wantBackupN int
	}{
		{"primary unavailable", 503, "ServiceUnavailable", "backup", nil, 1},
		{"primary throttled", 400, "ThrottlingException", "backup", nil, 1},
		{"primary denies: no failover", 400, "AccessDeniedException", "", provider.ErrPermissionDenied, 0},
		{"primary not found: no failover", 400, "ResourceNotFoundException", "", provider.ErrNotFound, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			env.fake.putSecret("us-east-1", "db", "primary")
			env.fake.putSecret("us-west-2", "db-replica", "backup")
			env.fake.failWith("GetSecretValue@us-east-1", tc.status, tc.code)
			obj := secretObject("db")
			obj.Failover = &providerclass.FailoverObject{Name: "db-replica"}
			plan := awsPlan(providerclass.AWSParameters{Region: "us-east-1", FailoverRegion: "us-west-2"}, obj)
			got, err := env.backend.Fetch(context.Background(), plan, identity("app", "web"))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Fetch: %v", err)
			} else if string(got[0].Bytes) != tc.wantValue {
				t.Errorf("value = %q, want %q", got[0].Bytes, tc.wantValue)
			}
			if n := env.fake.count("GetSecretValue@us-west-2"); n != tc.wantBackupN {
				t.Errorf("failover region reads = %d, want %d", n, tc.wantBackupN)
			}
		})
	}
}

func TestFetchRejectsBadPlans(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.DefaultRegion = "" })
	arnWest := "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf"
	withFailover := secretObject("db")
	withFailover.Failover = &providerclass.FailoverObject{Name: "db2"}
	tests := []struct {
		name   string
		params providerclass.AWSParameters
		obj    providerclass.Object
		want   string
	}{
		{"no region anywhere", providerclass.AWSParameters{}, secretObject("db"), "parameters.region"},
		{"failover equals primary", providerclass.AWSParameters{Region: "eu-west-1", FailoverRegion: "eu-west-1"}, secretObject("db"), "parameters.failoverRegion"},
		{"ARN of another region", providerclass.AWSParameters{Region: "eu-west-1"}, providerclass.Object{Name: arnWest, Type: typeSecretsManager}, "objects[0].objectName"},
		{"bad ARN", providerclass.AWSParameters{Region: "eu-west-1"}, providerclass.Object{Name: "arn:nope", Type: typeSecretsManager}, "objects[0].objectName"},
		{"unknown type", providerclass.AWSParameters{Region: "eu-west-1"}, providerclass.Object{Name: "x", Type: "vault"}, "objects[0].objectType"},
		{"ssm version and label", providerclass.AWSParameters{Region: "eu-west-1"}, providerclass.Object{Name: "/x", Type: typeParameter, Version: "1", VersionLabel: "l"}, "objects[0].objectVersionLabel"},
		{"failover object without failover region", providerclass.AWSParameters{Region: "eu-west-1"}, withFailover, "objects[0].failoverObject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.backend.Fetch(context.Background(), awsPlan(tc.params, tc.obj), identity("app", "web"))
			if !errors.Is(err, provider.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "app/spc") {
				t.Errorf("error %q does not name %s and the class", err, tc.want)
			}
		})
	}
	if n := env.fake.count("AssumeRoleWithWebIdentity"); n != 0 {
		t.Errorf("rejected plans still called STS %d times", n)
	}
	_, err := env.backend.Fetch(context.Background(), &providerclass.Plan{Provider: "aws", Dialect: providerclass.DialectExternal}, identity("app", "web"))
	if !errors.Is(err, provider.ErrInvalid) {
		t.Errorf("plan without aws parameters: err = %v, want ErrInvalid", err)
	}
}

func TestFetchRegionFromDefault(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.DefaultRegion = "eu-central-1" })
	env.fake.putSecret("eu-central-1", "db", "from the default region")
	env.fake.putSecret("ap-south-1", "db", "from the class's region")
	got := mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{}, secretObject("db")), identity("app", "web"))
	if string(got[0].Bytes) != "from the default region" {
		t.Errorf("got %q", got[0].Bytes)
	}
	got = mustFetch(t, env.backend, awsPlan(providerclass.AWSParameters{Region: "ap-south-1"}, secretObject("db")), identity("app", "web"))
	if string(got[0].Bytes) != "from the class's region" {
		t.Errorf("got %q", got[0].Bytes)
	}
}

func TestUndecodableResponsesNeverQuoteTheBody(t *testing.T) {
	const leaked = "hunter2-in-the-body"
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"denied with an XML body", 403, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>" + leaked + "</Message></Error></ErrorResponse>", provider.ErrPermissionDenied},
		{"success that is not JSON", 200, `{"SecretString": "` + leaked, provider.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.MaxAttempts = 1 })
			env.fake.putSecret("us-east-1", "db", "v")
			env.fake.failWithBody("GetSecretValue", tc.status, tc.body)
			_, err := env.backend.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, secretObject("db")), identity("app", "web"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes the response body: %q", err)
			}
		})
	}
}

func TestLogsNameObjectsNeverValues(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 9})
	env := newTestEnv(t, func(o *Options) { o.Logger = logger })
	const value = "correct-horse-battery-staple"
	env.fake.putSecret("us-east-1", "logged/a", value)
	env.fake.putSecret("us-east-1", "logged/b", value)
	env.fake.putSecret("us-west-2", "logged/a", value)
	env.fake.putParam("us-east-1", "/logged/p", "SecureString", value)
	env.fake.failWith("GetSecretValue@us-east-1", 503, "ServiceUnavailable")
	env.fake.failWith("BatchGetSecretValue", 400, "AccessDeniedException")
	plan := awsPlan(providerclass.AWSParameters{FailoverRegion: "us-west-2"}, secretObject("logged/a"), secretObject("logged/b"), parameterObject("/logged/p"))
	_, err := env.backend.Fetch(context.Background(), plan, identity("app", "web"))
	if err == nil {
		t.Fatal("logged/b has no failover copy: want an error")
	}
	// The failed fetch may have stopped logged/a before it was read; a fetch of the
	// objects that have a failover copy reads it for sure.
	env.clock.Advance(time.Minute)
	servable := awsPlan(providerclass.AWSParameters{FailoverRegion: "us-west-2"}, secretObject("logged/a"), parameterObject("/logged/p"))
	if _, err := env.backend.Fetch(context.Background(), servable, identity("app", "web")); err != nil {
		t.Fatalf("logged/a has a failover copy: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "logged/a") || !strings.Contains(out, "us-west-2") {
		t.Errorf("logs do not say which region served logged/a:\n%s", out)
	}
	if strings.Contains(out, value) || strings.Contains(err.Error(), value) {
		t.Errorf("a secret value reached the logs or the error:\n%s", out)
	}
}
