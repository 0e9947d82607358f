//go:build integration

package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"google.golang.org/grpc/codes"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

const (
	// faultRate is the share of backend requests that get a fault.
	faultRate = 0.10
	// faultWorkers publish at once, as kubelet does for pods starting together.
	faultWorkers = 8
	// faultDeadline is the driver's provider timeout: a publish that cannot finish in it
	// fails, and kubelet retries it later.
	faultDeadline = time.Second
	// faultMaxDelay is the longest a delayed request is held: some delays fit in the
	// deadline and some do not.
	faultMaxDelay = 1500 * time.Millisecond
	// growthTolerance is how many goroutines and fds the process may gain between two
	// quiet samples (the proxies' connections closed): timers, in-flight calls and
	// connections of the API server clients come and go, but a leak per failed publish
	// or refresh (tens of them in every run) is above it.
	growthTolerance = 16
	// awsAttempts is aws.Options.MaxAttempts's default, the driver's: attempts of one
	// AWS request, the first included.
	awsAttempts = 3
	// vaultAttempts is one Vault request's attempts: vault.Options.MaxRetries's default
	// (2) retries after the first.
	vaultAttempts = 3
)

// awsValues are the two Secrets Manager secrets of the guide's class, by generation.
func awsValues(gen int) (postgres, s3 string) {
	return fmt.Sprintf(`{"username":"postgres","password":"fault-pw-%d"}`, gen),
		fmt.Sprintf(`{"accessKeyId":"AKIAFAULT%d","secretAccessKey":"fault-s3-%d"}`, gen, gen)
}

// seedAWS writes generation gen of the guide's secrets into moto directly, not through
// the proxy.
func seedAWS(t *testing.T, moto *harness.Moto, gen int) {
	t.Helper()
	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	pg, s3 := awsValues(gen)
	harness.RecordSecretValue(t, pg, s3)
	for name, value := range map[string]string{"prod/cnpg/postgres-credentials": pg, "prod/cnpg/s3-credentials": s3} {
		var err error
		if gen == 1 {
			_, err = sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value})
		} else {
			_, err = sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &value})
		}
		if err != nil {
			t.Fatalf("seed %s generation %d: %v", name, gen, err)
		}
	}
}

// awsFaultEnv is moto behind a FaultProxy, the AWS backend pointed at the proxy and the
// driver in this process, serving the guide's AWS class.
type awsFaultEnv struct {
	moto  *harness.Moto
	proxy *harness.FaultProxy
	fd    *faultDriver
	spc   *secretsstorev1.SecretProviderClass
	plan  *providerclass.Plan
}

// awsFaultSetup varies an awsFaultEnv.
type awsFaultSetup struct {
	// seed of the proxy's choices.
	seed uint64
	// namespace of the class and pods; "" keeps the fixture's.
	namespace string
	aws       func(*aws.Options)
}

func startAWSFaultEnv(t *testing.T, setup awsFaultSetup) *awsFaultEnv {
	t.Helper()
	harness.RequireRoot(t)
	e := &awsFaultEnv{moto: harness.StartMoto(t)}
	seedAWS(t, e.moto, 1)
	e.proxy = harness.NewFaultProxy(t, e.moto.Endpoint, harness.FaultConfig{Seed: setup.seed, MaxDelay: faultMaxDelay, Classify: awsFlow})
	e.spc = harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	if setup.namespace != "" {
		e.spc.Namespace = setup.namespace
	}
	cls := &classes{}
	cls.set(e.spc)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg := provider.NewRegistry()
	reg.Register("aws", e.backend(t, ctx, setup.aws))
	e.fd = startFaultDriver(t, cls, reg, func(o *driver.Options) { o.ProviderTimeout = faultDeadline })
	var err error
	e.plan, err = providerclass.NewPlan(e.spc, providerclass.Mount{Namespace: e.spc.Namespace, PodName: "app", ServiceAccount: "sa"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// backend is an AWS backend that reaches moto through the proxy: production retry
// settings but a short backoff cap, so retries fit the short deadline of these tests.
func (e *awsFaultEnv) backend(t *testing.T, ctx context.Context, tweak func(*aws.Options)) *aws.Backend {
	t.Helper()
	opts := aws.Options{DefaultRegion: "us-east-1", Endpoint: e.proxy.URL, Roles: roles{}, MaxBackoff: 20 * time.Millisecond, Logger: harness.LeakLogger(t)}
	if tweak != nil {
		tweak(&opts)
	}
	b, err := aws.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// volume is pod i's volume with its own ServiceAccount, so every publish makes its own
// STS and Secrets Manager calls and no publish is answered from another's.
func (e *awsFaultEnv) volume(t *testing.T, i int) csiclient.Volume {
	t.Helper()
	ns, sa := e.spc.Namespace, fmt.Sprintf("sa-%d", i)
	tokens := map[string]csiclient.Token{"sts.amazonaws.com": {Token: unsignedToken(ns, sa, "sts.amazonaws.com"), ExpiresAt: time.Now().Add(time.Hour)}}
	return e.fd.volume(t, i, ns, sa, e.spc.Name, tokens)
}

// TestFaultsAWSPublishes publishes the guide's AWS class 1000 times, one new pod and
// ServiceAccount each, 8 at a time, through a proxy that faults 10% of the requests to
// moto. Every publish either holds exactly the backend's files (and is unpublished
// again) or fails with Unavailable or DeadlineExceeded leaving no mount and nothing in
// the target folder; no publish's requests exceed the retry bound; the process (driver,
// backend and proxy) has no more goroutines or open files after the run than before it.
func TestFaultsAWSPublishes(t *testing.T) {
	const publishes, warmup = 1000, 40
	e := startAWSFaultEnv(t, awsFaultSetup{seed: 20261130})
	pg, s3 := awsValues(1)
	want := renderedFiles(t, e.plan, pg, s3)
	r := runFaultedPublishes(t, e.fd, e.proxy, e.volume, want, warmup, publishes)

	// One publish of a new ServiceAccount makes one AssumeRoleWithWebIdentity, then one
	// BatchGetSecretValue for both secrets and, if that fails, one GetSecretValue each;
	// each request is tried at most awsAttempts times. moto's STS gives each call its
	// own access key, so a key's requests are one publish's.
	most := checkRequestBounds(t, e.proxy.RequestsByKey(), map[string]int{"sts": awsAttempts, "key": awsAttempts * 3})
	r.logAndCheck(t, "AWS", e.fd, e.proxy, publishes,
		fmt.Sprintf("STS %d (bound %d), Secrets Manager %d (bound %d)", most["sts"], awsAttempts, most["key"], awsAttempts*3))
}

// checkExercised fails t when the run did not exercise what it claims: every fault
// kind injected, most publishes succeeding despite the faults.
func checkExercised(t *testing.T, p *harness.FaultProxy, out *outcomes, publishes int) {
	t.Helper()
	f := p.Faults()
	for _, k := range harness.AllFaults {
		if f[k] == 0 {
			t.Errorf("no %s fault was injected", k)
		}
	}
	out.mu.Lock()
	ok := out.byCode[codes.OK]
	out.mu.Unlock()
	if ok < publishes/2 {
		t.Errorf("only %d of %d publishes succeeded; retries should carry most through %.0f%% faults", ok, publishes, faultRate*100)
	}
}
