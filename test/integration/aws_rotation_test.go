//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	awsbackend "github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/harness"
)

// TestAWSRotationTicksShareFetches publishes 20 volumes of the guide's class for one
// ServiceAccount and runs three rotation ticks through the real driver and AWS backend
// against moto: each tick asks Secrets Manager at most once per object for each kind of
// call, however many volumes use it, and the change made before the last tick reaches
// every volume.
func TestAWSRotationTicksShareFetches(t *testing.T) {
	harness.RequireRoot(t)
	moto := harness.StartMoto(t)
	seed := motoSeed{moto: moto}
	proxy := newAWSProxy(t, moto.Endpoint)
	roles := awsRoleMap{"cnpg-system/cnpg-sa": "arn:aws:iam::123456789012:role/cnpg"}
	data, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spc := awsClass(t, string(data))
	seed.secret(t, "us-east-1", "prod/cnpg/postgres-credentials", `{"username":"postgres","password":"tick-pw-1"}`)
	seed.secret(t, "us-east-1", "prod/cnpg/s3-credentials", `{"accessKeyId":"AKIATICK","secretAccessKey":"tick-s3"}`)

	// The backend's clock moves past its coalescing window between ticks, so every tick
	// is a fresh poll, as two ticks --rotation-poll-interval apart are.
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	backend := newAWSBackend(t, proxy.URL, roles, func(o *awsbackend.Options) { o.Now = clock })
	reg := provider.NewRegistry()
	reg.Register("aws", backend)
	d, c := startDriver(t, awsClassMap{types.NamespacedName{Namespace: spc.Namespace, Name: spc.Name}: spc}, reg, "")

	const volumes = 20
	var targets []string
	for i := range volumes {
		v := awsVolume(t, "cnpg-system", fmt.Sprintf("pg-%d", i), "cnpg-sa", spc.Name)
		if err := awsPublish(t, c, v); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		targets = append(targets, v.TargetPath)
	}

	objects := 2
	for tick := 1; tick <= 3; tick++ {
		if tick == 3 {
			seed.putSecret(t, "us-east-1", "prod/cnpg/postgres-credentials", `{"username":"postgres","password":"tick-pw-2"}`)
		}
		advance(time.Minute)
		proxy.reset()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		d.RefreshAll(ctx)
		cancel()
		describe := proxy.count("DescribeSecret")
		reads := proxy.count("GetSecretValue") + proxy.count("BatchGetSecretValue")
		sts := proxy.count("AssumeRoleWithWebIdentity")
		t.Logf("tick %d over %d volumes: DescribeSecret %d, reads %d, STS %d", tick, volumes, describe, reads, sts)
		if describe > objects || reads > objects || sts > 1 {
			t.Errorf("tick %d: DescribeSecret %d, reads %d, STS %d; want at most %d, %d and 1 for %d volumes of one ServiceAccount",
				tick, describe, reads, sts, objects, objects, volumes)
		}
		if tick < 3 && reads != 0 {
			t.Errorf("tick %d: %d reads with nothing changed, want 0 (DescribeSecret tells the version)", tick, reads)
		}
	}
	for i, target := range targets {
		if got := awsReadFiles(t, target, "db-password")["db-password"]; got != "tick-pw-2" {
			t.Errorf("volume %d: db-password = %q after the change, want the new value", i, got)
		}
	}
}
