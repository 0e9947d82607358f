//go:build integration

package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/harness"
)

// TestSecretSyncAWS runs the guide's AWS class unchanged against moto with the real AWS
// backend: web identity from a TokenRequest token of cnpg-sa, byte-exact Secrets, a
// PostgreSQL login with the synced credentials, and a rotated value at the next poll.
func TestSecretSyncAWS(t *testing.T) {
	moto := harness.SharedMoto(t)
	pg := harness.SharedPostgres(t)
	role := fmt.Sprintf("cnpg_%x", rand.Uint64())
	password := fmt.Sprintf("aws-%x:pw", rand.Uint64())
	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	put := func(name string, doc map[string]string, create bool) {
		t.Helper()
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		if create {
			_, err = sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &s})
		} else {
			_, err = sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &s})
		}
		if err != nil {
			t.Fatalf("secretsmanager %s: %v", name, err)
		}
	}
	put("prod/cnpg/postgres-credentials", map[string]string{"username": role, "password": password}, true)
	put("prod/cnpg/s3-credentials", map[string]string{"accessKeyId": testAccessKey, "secretAccessKey": testSecretKey}, true)
	pg.CreateRole(t, role, password)

	e := startEnvWith(t, "aws", func(e *env) provider.Provider {
		roles, err := aws.NewServiceAccountRoles(e.api.Client, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := aws.New(context.Background(), aws.Options{
			DefaultRegion: harness.MotoRegion, Endpoint: moto.Endpoint,
			Roles: roles, Tokens: NewTokenRequester(e.api.Client),
			CoalesceWindow: time.Millisecond, MaxAttempts: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/cnpg"})

	e.createSync(t, "postgres-credentials", "", guideData["postgres-credentials"], nil)
	e.createSync(t, "s3-credentials", "", guideData["s3-credentials"], nil)
	e.createSync(t, "cnpg-app", "kubernetes.io/basic-auth", guideData["postgres-credentials"], nil)
	e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"username": role, "password": password})
	})
	e.waitSecret(t, "s3-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"access-key": testAccessKey, "secret-key": testSecretKey})
	})
	app := e.waitSecret(t, "cnpg-app", func(s *corev1.Secret) bool { return len(s.Data) == 2 })
	if app.Type != corev1.SecretTypeBasicAuth {
		t.Fatalf("type %s", app.Type)
	}
	conn := pg.Connect(t, pg.DSNFor(string(app.Data["username"]), string(app.Data["password"]), ""))
	var user string
	if err := conn.QueryRow(context.Background(), "select current_user").Scan(&user); err != nil || user != role {
		t.Fatalf("logged in as %q (%v), want %q", user, err, role)
	}

	put("prod/cnpg/postgres-credentials", map[string]string{"username": role, "password": password + "-2"}, false)
	e.tick(t)
	e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { return string(s.Data["password"]) == password+"-2" })
	e.waitCondition(t, "postgres-credentials", v1alpha1.ConditionUpdate, metav1.ConditionTrue, v1alpha1.ReasonValueChangeOrForceUpdateDetected)

	e.assertNoValues(t, password, password+"-2", testAccessKey, testSecretKey)
}
