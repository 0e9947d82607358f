//go:build integration

package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	ssmapi "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// A coalescing window longer than any test: every publish below falls inside the window
// of the one before, so a denial cannot come from the cache having expired.
const isoWindow = time.Hour

// TestIsolationServiceAccountsShareNothing: two ServiceAccounts of one namespace mount
// the same SecretProviderClass; the backend lets one read the secret and not the other.
// Publishing for the allowed one and then, inside the coalescing window, for the denied
// one fails PermissionDenied with nothing mounted: the denied one made its own identity
// exchange and its own read with its own credentials, and was not handed the allowed
// one's credentials or cached content. Identity exchanges are counted per ServiceAccount.
func TestIsolationServiceAccountsShareNothing(t *testing.T) {
	harness.RequireRoot(t)
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))

	t.Run("aws", func(t *testing.T) { isolateAWS(t, api) })
	t.Run("vault", func(t *testing.T) { isolateVault(t, api) })
}

// isolateAWS: IAM enforced in a moto of its own; role "allowed" may read Secrets
// Manager, role "denied" only SSM. Both ServiceAccounts carry their role annotation and
// present real tokens of the API server.
func isolateAWS(t *testing.T, api *harness.APIServer) {
	moto := harness.StartMoto(t)
	proxy := harness.NewCountingProxy(t, moto.Endpoint, isoAWSCaller)
	ns := api.NewNamespace(t)
	allowedRole := isoIAMRole(t, moto, "iso-allowed", "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "secretsmanager:DescribeSecret", "ssm:GetParameters")
	deniedRole := isoIAMRole(t, moto, "iso-denied", "ssm:GetParameters")
	api.CreateServiceAccount(t, ns, "allowed", map[string]string{aws.RoleAnnotation: allowedRole})
	api.CreateServiceAccount(t, ns, "denied", map[string]string{aws.RoleAnnotation: deniedRole})

	value, warm := isoValue(t, "aws"), isoValue(t, "warm")
	secret, param := "isolation/"+ns+"/db", "/isolation/"+ns+"/warm"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := secretsmanager.NewFromConfig(moto.AWSConfig()).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &secret, SecretString: &value}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssmapi.NewFromConfig(moto.AWSConfig()).PutParameter(ctx, &ssmapi.PutParameterInput{Name: &param, Value: &warm, Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	api.ApplyManifest(t, `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: db, namespace: `+ns+`}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: "`+secret+`", objectType: secretsmanager, objectAlias: db}
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: warm, namespace: `+ns+`}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: "`+param+`", objectType: ssmparameter, objectAlias: warm}
`)

	roles, err := aws.NewServiceAccountRoles(api.Client, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := roles.Start(ctx); err != nil {
		t.Fatal(err)
	}
	backend, err := aws.New(ctx, aws.Options{
		DefaultRegion: harness.MotoRegion, Endpoint: proxy.URL, Roles: roles, MaxAttempts: 1,
		CoalesceWindow: isoWindow, Logger: harness.LeakLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", backend)
	_, c := startIsolationDriver(t, api, reg)

	// moto's STS takes no unsigned call once IAM is enforced, so each ServiceAccount
	// makes its identity exchange first, through a class both may read; the backend
	// keeps the credentials for their lifetime.
	all := map[string]int{}
	take := func() map[string]int {
		got := proxy.Take()
		for k, n := range got {
			all[k] += n
		}
		return got
	}
	for _, sa := range []string{"allowed", "denied"} {
		v := isoVolume(t, api, ns, sa, "warm", "sts.amazonaws.com")
		if err := isoPublish(t, c, v); err != nil {
			t.Fatalf("warm-up publish for %s: %v", sa, err)
		}
		checkFile(t, v, "warm", warm)
	}
	warmed := take()
	isoEnforceIAM(t, moto)

	allowed := isoVolume(t, api, ns, "allowed", "db", "sts.amazonaws.com")
	if err := isoPublish(t, c, allowed); err != nil {
		t.Fatalf("publish for allowed: %v", err)
	}
	checkFile(t, allowed, "db", value)
	first := take()

	denied := isoVolume(t, api, ns, "denied", "db", "sts.amazonaws.com")
	err = isoPublish(t, c, denied)
	second := take()
	checkDenied(t, denied, err, value, secret)

	// The allowed ServiceAccount again, inside the window: its own cached result
	// answers, so the cache was there to share and was not shared.
	again := isoVolume(t, api, ns, "allowed", "db", "sts.amazonaws.com")
	if err := isoPublish(t, c, again); err != nil {
		t.Fatalf("second publish for allowed: %v", err)
	}
	checkFile(t, again, "db", value)
	third := take()

	subject := func(sa string) string { return "AssumeRoleWithWebIdentity system:serviceaccount:" + ns + ":" + sa }
	for _, sa := range []string{"allowed", "denied"} {
		if n := all[subject(sa)]; n != 1 {
			t.Errorf("%s: %d identity exchanges, want 1 (its own, kept for the credentials' lifetime)", sa, n)
		}
	}
	if n := isoCount(warmed, "AssumeRoleWithWebIdentity"); n != 2 {
		t.Errorf("warm-up: %d identity exchanges, want one per ServiceAccount: %v", n, warmed)
	}
	readsAllowed := isoKeys(first, "GetSecretValue")
	readsAllowed = append(readsAllowed, isoKeys(first, "BatchGetSecretValue")...)
	readsDenied := isoKeys(second, "GetSecretValue")
	readsDenied = append(readsDenied, isoKeys(second, "BatchGetSecretValue")...)
	if len(readsAllowed) != 1 || len(readsDenied) != 1 {
		t.Fatalf("reads signed by %v for allowed and %v for denied, want one key each: %v / %v", readsAllowed, readsDenied, first, second)
	}
	if readsAllowed[0] == readsDenied[0] {
		t.Errorf("both ServiceAccounts' reads were signed with access key %s", readsAllowed[0])
	}
	if n := isoCount(third, "GetSecretValue") + isoCount(third, "BatchGetSecretValue") + isoCount(third, "AssumeRoleWithWebIdentity"); n != 0 {
		t.Errorf("the allowed ServiceAccount's second publish inside the window reached Secrets Manager or STS: %v", third)
	}
	t.Logf("identity exchanges: allowed %d, denied %d; requests: warm-up %v, allowed %v, denied %v, allowed again %v",
		all[subject("allowed")], all[subject("denied")], warmed, first, second, third)
}

// isolateVault: the kubernetes auth role is bound to ServiceAccount "allowed" only; the
// real API server reviews both ServiceAccounts' tokens.
func isolateVault(t *testing.T, api *harness.APIServer) {
	v := harness.SharedVault(t)
	v.ConfigureKubernetesAuth(t, api, "kubernetes")
	proxy := harness.NewCountingProxy(t, v.Addr, isoVaultCaller)
	ns := api.NewNamespace(t)
	for _, sa := range []string{"allowed", "denied"} {
		api.CreateServiceAccount(t, ns, sa, nil)
	}
	value := isoValue(t, "vault")
	path := "isolation-" + ns
	if _, err := v.Client.Logical().Write("secret/data/"+path, map[string]any{"data": map[string]any{"password": value}}); err != nil {
		t.Fatal(err)
	}
	v.WritePolicy(t, ns, `path "secret/data/`+path+`" { capabilities = ["read"] }`)
	v.WriteKubernetesRole(t, "kubernetes", harness.KubernetesRole{Name: ns, Namespaces: []string{ns}, ServiceAccounts: []string{"allowed"}, Policies: []string{ns}})
	api.ApplyManifest(t, `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: db, namespace: `+ns+`}
spec:
  provider: vault
  parameters:
    roleName: `+ns+`
    vaultAddress: `+proxy.URL+`
    objects: |
      - {objectName: db, secretPath: "secret/data/`+path+`", secretKey: password}
`)
	backend, err := vault.New(vault.Options{Keys: vault.StaticKey("isolation-key-0123456789abcdef01"), MaxRetries: -1, CoalesceWindow: isoWindow})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("vault", backend)
	_, c := startIsolationDriver(t, api, reg)

	allowed := isoVolume(t, api, ns, "allowed", "db", "vault")
	if err := isoPublish(t, c, allowed); err != nil {
		t.Fatalf("publish for allowed: %v", err)
	}
	checkFile(t, allowed, "db", value)
	first := proxy.Take()

	denied := isoVolume(t, api, ns, "denied", "db", "vault")
	err = isoPublish(t, c, denied)
	second := proxy.Take()
	checkDenied(t, denied, err, value, "secret/data/"+path)

	again := isoVolume(t, api, ns, "allowed", "db", "vault")
	if err := isoPublish(t, c, again); err != nil {
		t.Fatalf("second publish for allowed: %v", err)
	}
	checkFile(t, again, "db", value)
	third := proxy.Take()

	login := func(sa string) string { return "login system:serviceaccount:" + ns + ":" + sa }
	read := "GET /v1/secret/data/" + path
	if first[login("allowed")] != 1 || first[read] != 1 {
		t.Errorf("allowed: %d logins and %d reads, want 1 and 1: %v", first[login("allowed")], first[read], first)
	}
	// The denied ServiceAccount logs in with its own token and is refused there: it
	// never holds a Vault token, and the allowed one's token and read are not reused.
	if second[login("denied")] != 1 || second[login("allowed")] != 0 || second[read] != 0 {
		t.Errorf("denied: %d logins of its own, %d of allowed, %d reads; want 1, 0, 0: %v", second[login("denied")], second[login("allowed")], second[read], second)
	}
	if n := third[login("allowed")] + third[read]; n != 0 {
		t.Errorf("the allowed ServiceAccount's second publish inside the window logged in or read again: %v", third)
	}
	t.Logf("logins: allowed %d, denied %d; requests: allowed %v, denied %v, allowed again %v",
		first[login("allowed")]+third[login("allowed")], second[login("denied")], first, second, third)
}

// checkFile fails unless the volume's file holds want.
func checkFile(t *testing.T, v csiclient.Volume, file, want string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(v.TargetPath, file))
	if err != nil || string(got) != want {
		t.Fatalf("%s of %s: %d bytes (%v), want the seeded value", file, v.Pod.ServiceAccount, len(got), err)
	}
}

// checkDenied fails unless err is PermissionDenied naming the object, carries no value,
// and nothing was mounted or left at the target.
func checkDenied(t *testing.T, v csiclient.Volume, err error, value, object string) {
	t.Helper()
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("publish for %s: %v, want PermissionDenied", v.Pod.ServiceAccount, err)
	}
	msg := status.Convert(err).Message()
	if !strings.Contains(msg, object) {
		t.Errorf("error %q does not name %s", msg, object)
	}
	if strings.Contains(msg, value) {
		t.Errorf("the refusal carries the value")
	}
	if tmpfsAt(t, v.TargetPath) {
		t.Errorf("the refused publish mounted a tmpfs")
	}
	if _, err := os.Stat(filepath.Join(v.TargetPath, "db")); !os.IsNotExist(err) {
		t.Errorf("the refused publish left a file: %v", err)
	}
}
