//go:build integration

package integration

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	awsbackend "github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/harness"
)

// BenchmarkAWSMountTenSecrets fetches one mount's ten Secrets Manager objects from moto,
// with BatchGetSecretValue and with one GetSecretValue per object. Every iteration is a
// first mount: a new identity (so nothing is coalesced or remembered), signed with
// static test credentials (so no STS call is measured).
func BenchmarkAWSMountTenSecrets(b *testing.B) {
	moto := harness.StartMoto(b)
	seed := motoSeed{moto: moto}
	b.Setenv("AWS_ACCESS_KEY_ID", harness.MotoAccessKeyID)
	b.Setenv("AWS_SECRET_ACCESS_KEY", harness.MotoSecretAccessKey)
	plan := &providerclass.Plan{
		Class: types.NamespacedName{Namespace: "bench", Name: "ten"}, Provider: "aws", Dialect: providerclass.DialectAWS,
		AWS: &providerclass.AWSParameters{Region: "us-east-1"},
	}
	sm := seed.sm("us-east-1")
	for i := range 10 {
		name := fmt.Sprintf("bench/secret-%d", i)
		value := fmt.Sprintf(`{"username":"user%d","password":"pass-%d"}`, i, i)
		if _, err := sm.CreateSecret(context.Background(), newSecretInput(name, value)); err != nil {
			b.Fatal(err)
		}
		plan.Objects = append(plan.Objects, providerclass.Object{Field: fmt.Sprintf("objects[%d]", i), Name: name, Type: "secretsmanager", File: fmt.Sprintf("secret-%d", i)})
	}
	for _, mode := range []struct {
		name    string
		noBatch bool
	}{{"batched", false}, {"unbatched", true}} {
		b.Run(mode.name, func(b *testing.B) {
			backend := newAWSBackend(b, moto.Endpoint, nil, func(o *awsbackend.Options) {
				o.AllowAmbientCredentials = true
				o.DisableBatchGet = mode.noBatch
			})
			ctx := context.Background()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				id := provider.Identity{Namespace: "bench", ServiceAccount: fmt.Sprintf("%s-%d", mode.name, n)}
				got, err := backend.Fetch(ctx, plan, id)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != 10 {
					b.Fatalf("%d contents", len(got))
				}
			}
		})
	}
}
