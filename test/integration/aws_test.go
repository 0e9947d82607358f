//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
	awsbackend "github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// TestAWSThroughTheDriver mounts `provider: aws` classes through the real driver
// (NodePublishVolume → files on tmpfs) against moto, with a proxy that counts what
// moto received. The subtests share one moto and use their own names.
func TestAWSThroughTheDriver(t *testing.T) {
	harness.RequireRoot(t)
	moto := harness.StartMoto(t)
	seed := motoSeed{moto: moto}
	proxy := newAWSProxy(t, moto.Endpoint)
	roles := awsRoleMap{
		"cnpg-system/cnpg-sa": "arn:aws:iam::123456789012:role/cnpg",
		"app/web":             "arn:aws:iam::123456789012:role/web",
		"app/worker":          "arn:aws:iam::123456789012:role/worker",
	}

	t.Run("CloudNativePG guide", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		spc := awsClass(t, string(data))
		pg := `{"username":"app","password":"s3cr3t-Pa55"}`
		s3 := `{"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"wJalr/K7MDENG+bPxRfiCY"}`
		seed.secret(t, "us-east-1", "prod/cnpg/postgres-credentials", pg)
		seed.secret(t, "us-east-1", "prod/cnpg/s3-credentials", s3)
		proxy.reset()

		c := startAWSDriver(t, awsClassMap{{Namespace: spc.Namespace, Name: spc.Name}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
		v := awsVolume(t, "cnpg-system", "pg-1", "cnpg-sa", spc.Name)
		if err := awsPublish(t, c, v); err != nil {
			t.Fatalf("publish: %v", err)
		}
		want := map[string]string{
			"prod_cnpg_postgres-credentials": pg, "db-username": "app", "db-password": "s3cr3t-Pa55",
			"prod_cnpg_s3-credentials": s3, "s3-access-key": "AKIAEXAMPLE", "s3-secret-key": "wJalr/K7MDENG+bPxRfiCY",
		}
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		got := awsReadFiles(t, v.TargetPath, names...)
		for n, w := range want {
			if got[n] != w {
				t.Errorf("%s = %q, want %q", n, got[n], w)
			}
		}
		for action, n := range map[string]int{"AssumeRoleWithWebIdentity": 1, "BatchGetSecretValue": 1, "GetSecretValue": 0} {
			if got := proxy.count(action); got != n {
				t.Errorf("%s requests = %d, want %d", action, got, n)
			}
		}
	})

	t.Run("SSM String SecureString StringList, more than ten, versions and labels", func(t *testing.T) {
		var objects []string
		want := map[string]string{}
		types := []ssmtypes.ParameterType{ssmtypes.ParameterTypeString, ssmtypes.ParameterTypeSecureString, ssmtypes.ParameterTypeStringList}
		for i := range 12 {
			name := fmt.Sprintf("/paramtest/p%02d", i)
			value := fmt.Sprintf("value %d", i)
			if types[i%3] == ssmtypes.ParameterTypeStringList {
				value = fmt.Sprintf("a%d,b%d,c%d", i, i, i)
			}
			seed.param(t, "us-east-1", name, types[i%3], value)
			objects = append(objects, fmt.Sprintf("- {objectName: %q, objectType: ssmparameter}", name))
			want[fmt.Sprintf("_paramtest_p%02d", i)] = value
		}
		seed.param(t, "us-east-1", "/paramtest/versioned", ssmtypes.ParameterTypeSecureString, "first")
		seed.param(t, "us-east-1", "/paramtest/versioned", ssmtypes.ParameterTypeSecureString, "second")
		seed.param(t, "us-east-1", "/paramtest/versioned", ssmtypes.ParameterTypeSecureString, "third")
		seed.labelParam(t, "us-east-1", "/paramtest/versioned", 2, "stable")
		seed.param(t, "us-east-1", "/paramtest/labelled", ssmtypes.ParameterTypeString, "labelled one")
		seed.param(t, "us-east-1", "/paramtest/labelled", ssmtypes.ParameterTypeString, "labelled two")
		seed.labelParam(t, "us-east-1", "/paramtest/labelled", 1, "stable")
		objects = append(objects,
			`- {objectName: /paramtest/versioned, objectType: ssmparameter, objectVersion: "1", objectAlias: version-1}`,
			`- {objectName: /paramtest/labelled, objectType: ssmparameter, objectVersionLabel: stable, objectAlias: label-stable}`)
		want["version-1"], want["label-stable"] = "first", "labelled one"
		spc := awsClass(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: ssm, namespace: app}
spec:
  provider: aws
  parameters:
    region: us-east-1
    objects: |
      `+strings.Join(objects, "\n      ")+"\n")
		proxy.reset()
		c := startAWSDriver(t, awsClassMap{{Namespace: "app", Name: "ssm"}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
		v := awsVolume(t, "app", "web-1", "web", "ssm")
		if err := awsPublish(t, c, v); err != nil {
			t.Fatalf("publish: %v", err)
		}
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		got := awsReadFiles(t, v.TargetPath, names...)
		for n, w := range want {
			if got[n] != w {
				t.Errorf("%s = %q, want %q", n, got[n], w)
			}
		}
		if n := proxy.count("GetParameters"); n != 2 {
			t.Errorf("GetParameters requests = %d, want 2 for 14 parameters", n)
		}
	})

	t.Run("Secrets Manager versions, labels, binary and ARNs", func(t *testing.T) {
		_, oldID := seed.secret(t, "us-east-1", "smtest/rotated", "old value")
		seed.putSecret(t, "us-east-1", "smtest/rotated", "new value")
		seed.secret(t, "us-east-1", "smtest/staged", "current value")
		seed.putSecret(t, "us-east-1", "smtest/staged", "pending value", "AWSPENDING")
		binary := []byte{0x00, 0x01, 0xfe, 0xff, '\n'}
		seed.binarySecret(t, "us-east-1", "smtest/binary", binary)
		arn, _ := seed.secret(t, "us-east-1", "smtest/by-arn", "found by ARN")
		spc := awsClass(t, fmt.Sprintf(`
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: sm, namespace: app}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: smtest/rotated, objectType: secretsmanager, objectVersion: %q, objectAlias: rotated-old}
      - {objectName: smtest/staged, objectType: secretsmanager, objectVersionLabel: AWSPENDING, objectAlias: staged-pending}
      - {objectName: smtest/binary, objectType: secretsmanager, objectAlias: binary}
      - {objectName: %q, objectAlias: by-arn}
`, oldID, arn))
		c := startAWSDriver(t, awsClassMap{{Namespace: "app", Name: "sm"}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
		v := awsVolume(t, "app", "web-2", "web", "sm")
		if err := awsPublish(t, c, v); err != nil {
			t.Fatalf("publish: %v", err)
		}
		got := awsReadFiles(t, v.TargetPath, "rotated-old", "staged-pending", "binary", "by-arn")
		want := map[string]string{"rotated-old": "old value", "staged-pending": "pending value", "binary": string(binary), "by-arn": "found by ARN"}
		for n, w := range want {
			if got[n] != w {
				t.Errorf("%s = %q, want %q", n, got[n], w)
			}
		}
	})

	t.Run("failoverRegion", func(t *testing.T) {
		seed.secret(t, "us-east-1", "fotest/db", "from the primary")
		seed.secret(t, "us-west-2", "fotest/db-replica", "from the failover region")
		seed.param(t, "us-west-2", "/fotest/param", ssmtypes.ParameterTypeString, "parameter from the failover region")
		spc := awsClass(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: failover, namespace: app}
spec:
  provider: aws
  parameters:
    region: us-east-1
    failoverRegion: us-west-2
    objects: |
      - objectName: fotest/db
        objectType: secretsmanager
        objectAlias: db
        failoverObject: {objectName: fotest/db-replica}
      - {objectName: /fotest/param, objectType: ssmparameter, objectAlias: param}
`)
		c := startAWSDriver(t, awsClassMap{{Namespace: "app", Name: "failover"}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
		proxy.setFailRegion("us-east-1", true)
		t.Cleanup(func() { proxy.setFailRegion("us-east-1", false) })
		v := awsVolume(t, "app", "web-3", "web", "failover")
		if err := awsPublish(t, c, v); err != nil {
			t.Fatalf("publish: %v", err)
		}
		got := awsReadFiles(t, v.TargetPath, "db", "param")
		if got["db"] != "from the failover region" || got["param"] != "parameter from the failover region" {
			t.Errorf("files = %q", got)
		}
	})

	t.Run("NotFound names the object", func(t *testing.T) {
		spc := awsClass(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: missing, namespace: app}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: nftest/does-not-exist, objectType: secretsmanager}
`)
		c := startAWSDriver(t, awsClassMap{{Namespace: "app", Name: "missing"}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
		v := awsVolume(t, "app", "web-4", "web", "missing")
		err := awsPublish(t, c, v)
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "nftest/does-not-exist") {
			t.Errorf("publish: %v; want NotFound naming the object", err)
		}
	})

	t.Run("50 concurrent publishes, two ServiceAccounts", func(t *testing.T) {
		seed.secret(t, "us-east-1", "burst/a", "burst a")
		seed.secret(t, "us-east-1", "burst/b", "burst b")
		seed.param(t, "us-east-1", "/burst/c", ssmtypes.ParameterTypeSecureString, "burst c")
		spc := awsClass(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: burst, namespace: app}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: burst/a, objectType: secretsmanager}
      - {objectName: burst/b, objectType: secretsmanager}
      - {objectName: /burst/c, objectType: ssmparameter}
`)
		c := startAWSDriver(t, awsClassMap{{Namespace: "app", Name: "burst"}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
		proxy.reset()
		const pods = 50
		vols := make([]csiclient.Volume, pods)
		for i := range vols {
			vols[i] = awsVolume(t, "app", fmt.Sprintf("web-burst-%d", i), "web", "burst")
		}
		errs := make([]error, pods)
		var wg sync.WaitGroup
		for i := range vols {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				errs[i] = c.Publish(ctx, vols[i])
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			v := vols[i]
			t.Cleanup(func() { _ = c.Unpublish(context.Background(), v) })
		}
		for i, v := range vols {
			got := awsReadFiles(t, v.TargetPath, "burst_a", "burst_b", "_burst_c")
			if got["burst_a"] != "burst a" || got["burst_b"] != "burst b" || got["_burst_c"] != "burst c" {
				t.Fatalf("pod %d files = %q", i, got)
			}
		}
		for action, n := range map[string]int{"AssumeRoleWithWebIdentity": 1, "BatchGetSecretValue": 1, "GetParameters": 1, "GetSecretValue": 0, "DescribeSecret": 0} {
			if got := proxy.count(action); got != n {
				t.Errorf("after %d publishes: %s requests = %d, want %d", pods, action, got, n)
			}
		}
		webKeys := proxy.keysFor("BatchGetSecretValue")

		// Another ServiceAccount gets its own credentials and its own reads.
		w := awsVolume(t, "app", "worker-1", "worker", "burst")
		if err := awsPublish(t, c, w); err != nil {
			t.Fatal(err)
		}
		if n := proxy.count("AssumeRoleWithWebIdentity"); n != 2 {
			t.Errorf("STS requests = %d after a second ServiceAccount, want 2", n)
		}
		if n := proxy.count("BatchGetSecretValue"); n != 2 {
			t.Errorf("BatchGetSecretValue requests = %d after a second ServiceAccount, want 2 (no shared content)", n)
		}
		allKeys := proxy.keysFor("BatchGetSecretValue")
		if len(webKeys) != 1 || len(allKeys) != 2 {
			t.Errorf("signing keys: web %v, all %v; want one per ServiceAccount", webKeys, allKeys)
		}
	})
}

// TestAWSPermissions runs moto with IAM enforced: a denied read is PermissionDenied at
// the CSI boundary, naming the object, and a denied BatchGetSecretValue falls back to
// single reads. It has its own moto, as enforcement is server-wide.
func TestAWSPermissions(t *testing.T) {
	harness.RequireRoot(t)
	moto := harness.StartMoto(t)
	seed := motoSeed{moto: moto}
	proxy := newAWSProxy(t, moto.Endpoint)
	seed.secret(t, "us-east-1", "perm/a", "value a")
	seed.secret(t, "us-east-1", "perm/b", "value b")
	seed.param(t, "us-east-1", "/perm/p", ssmtypes.ParameterTypeString, "p")
	roles := awsRoleMap{
		"app/reader":  seed.role(t, "reader", "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "ssm:GetParameters"),
		"app/ssmonly": seed.role(t, "ssmonly", "ssm:GetParameters"),
	}
	classes := awsClassMap{}
	for _, c := range []struct{ name, objects string }{
		{"param", `- {objectName: /perm/p, objectType: ssmparameter}`},
		{"secrets", "- {objectName: perm/a, objectType: secretsmanager}\n      - {objectName: perm/b, objectType: secretsmanager}"},
	} {
		spc := awsClass(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: `+c.name+`, namespace: app}
spec:
  provider: aws
  parameters:
    objects: |
      `+c.objects+"\n")
		classes[types.NamespacedName{Namespace: "app", Name: c.name}] = spc
	}
	c := startAWSDriver(t, classes, newAWSBackend(t, proxy.URL, roles, func(o *awsbackend.Options) { o.MaxAttempts = 1 }))

	// moto's STS cannot take an unsigned call once IAM is enforced, so each
	// ServiceAccount gets its credentials first (they are cached for their lifetime).
	for _, sa := range []string{"reader", "ssmonly"} {
		if err := awsPublish(t, c, awsVolume(t, "app", sa+"-0", sa, "param")); err != nil {
			t.Fatalf("%s: %v", sa, err)
		}
	}
	seed.enforceIAM(t)
	proxy.reset()

	v := awsVolume(t, "app", "reader-1", "reader", "secrets")
	if err := awsPublish(t, c, v); err != nil {
		t.Fatalf("reader: %v", err)
	}
	if got := awsReadFiles(t, v.TargetPath, "perm_a", "perm_b"); got["perm_a"] != "value a" || got["perm_b"] != "value b" {
		t.Errorf("files = %q", got)
	}
	if b, g := proxy.count("BatchGetSecretValue"), proxy.count("GetSecretValue"); b != 1 || g != 2 {
		t.Errorf("BatchGetSecretValue %d, GetSecretValue %d; want the denied batch once, then 2 single reads", b, g)
	}

	err := awsPublish(t, c, awsVolume(t, "app", "ssmonly-1", "ssmonly", "secrets"))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "perm/") {
		t.Errorf("publish: %v; want PermissionDenied naming the object", err)
	}
}

// TestAWSWebIdentityWithRealToken exchanges a real ServiceAccount token from the
// harness's kube-apiserver, with the role read from the ServiceAccount's annotation
// through the informer.
func TestAWSWebIdentityWithRealToken(t *testing.T) {
	api := harness.StartAPIServer(t)
	moto := harness.StartMoto(t)
	seed := motoSeed{moto: moto}
	proxy := newAWSProxy(t, moto.Endpoint)
	seed.secret(t, "us-east-1", "irsa/db", "irsa value")

	ns := api.NewNamespace(t)
	role := "arn:aws:iam::123456789012:role/irsa"
	api.CreateServiceAccount(t, ns, "app", map[string]string{awsbackend.RoleAnnotation: role})
	api.CreateServiceAccount(t, ns, "plain", nil)
	roles, err := awsbackend.NewServiceAccountRoles(api.Client, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := roles.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b := newAWSBackend(t, proxy.URL, roles, nil)
	plan := &providerclass.Plan{
		Class: types.NamespacedName{Namespace: ns, Name: "irsa"}, Provider: "aws", Dialect: providerclass.DialectAWS,
		AWS:     &providerclass.AWSParameters{Region: "us-east-1"},
		Objects: []providerclass.Object{{Field: "objects[0]", Name: "irsa/db", Type: "secretsmanager", File: "irsa_db"}},
	}
	id := func(sa string) provider.Identity {
		return provider.Identity{Namespace: ns, ServiceAccount: sa, Tokens: map[string]provider.Token{
			"sts.amazonaws.com": {Token: api.Token(t, ns, sa, time.Hour, "sts.amazonaws.com"), ExpiresAt: time.Now().Add(time.Hour)},
		}}
	}
	app := id("app")
	got, err := b.Fetch(ctx, plan, app)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Bytes) != "irsa value" {
		t.Errorf("content = %q", got[0].Bytes)
	}
	if seen := proxy.seenTokens(); proxy.count("AssumeRoleWithWebIdentity") != 1 || len(seen) != 1 || seen[0] != app.Tokens["sts.amazonaws.com"].Token {
		t.Errorf("STS did not receive the ServiceAccount's real token")
	}
	if _, err := b.Fetch(ctx, plan, id("plain")); err == nil || !strings.Contains(err.Error(), awsbackend.RoleAnnotation) {
		t.Errorf("ServiceAccount without the annotation: err = %v", err)
	}

	// The same through the driver: kubelet's token for the pod reaches STS.
	spc := awsClass(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: {name: irsa, namespace: `+ns+`}
spec:
  provider: aws
  parameters:
    objects: |
      - {objectName: irsa/db, objectType: secretsmanager, objectAlias: db}
`)
	c := startAWSDriver(t, awsClassMap{{Namespace: ns, Name: "irsa"}: spc}, newAWSBackend(t, proxy.URL, roles, nil))
	proxy.reset()
	v := awsVolume(t, ns, "app-pod", "app", "irsa")
	token := api.Token(t, ns, "app", time.Hour, "sts.amazonaws.com")
	v.Tokens = map[string]csiclient.Token{"sts.amazonaws.com": {Token: token, ExpiresAt: time.Now().Add(time.Hour)}}
	if err := awsPublish(t, c, v); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := awsReadFiles(t, v.TargetPath, "db"); got["db"] != "irsa value" {
		t.Errorf("db = %q", got["db"])
	}
	if seen := proxy.seenTokens(); len(seen) != 1 || seen[0] != token {
		t.Errorf("STS did not receive the pod's token from the volume context")
	}
	w := awsVolume(t, ns, "plain-pod", "plain", "irsa")
	w.Tokens = map[string]csiclient.Token{"sts.amazonaws.com": {Token: api.Token(t, ns, "plain", time.Hour, "sts.amazonaws.com"), ExpiresAt: time.Now().Add(time.Hour)}}
	if err := awsPublish(t, c, w); status.Code(err) != codes.PermissionDenied {
		t.Errorf("publish for a ServiceAccount without a role: %v; want PermissionDenied", err)
	}
}
