//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/provider"
	awsbackend "github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// awsProxy sits between the backend and moto. It counts the requests moto received by
// action (and action@region), records which access key signed them and which web
// identity tokens reached STS, and can make a region answer 503.
type awsProxy struct {
	URL string

	mu         sync.Mutex
	counts     map[string]int
	keys       map[string]map[string]bool // access key → actions
	tokens     []string
	failRegion map[string]bool
}

var scopeRE = regexp.MustCompile(`Credential=([^/]+)/[0-9]+/([^/]+)/`)

func newAWSProxy(t *testing.T, target string) *awsProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &awsProxy{counts: map[string]int{}, keys: map[string]map[string]bool{}, failRegion: map[string]bool{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		action, key, region := "", "", ""
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			action = target[strings.Index(target, ".")+1:]
		} else if form, err := url.ParseQuery(string(body)); err == nil {
			action = form.Get("Action")
			if action == "AssumeRoleWithWebIdentity" {
				p.mu.Lock()
				p.tokens = append(p.tokens, form.Get("WebIdentityToken"))
				p.mu.Unlock()
			}
		}
		if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			key, region = m[1], m[2]
		}
		p.mu.Lock()
		p.counts[action]++
		p.counts[action+"@"+region]++
		if key != "" {
			if p.keys[key] == nil {
				p.keys[key] = map[string]bool{}
			}
			p.keys[key][action] = true
		}
		fail := region != "" && p.failRegion[region]
		p.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"__type":"ServiceUnavailable","Message":"region down (test proxy)"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *awsProxy) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[key]
}

// seenTokens lists the web identity tokens STS received.
func (p *awsProxy) seenTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tokens...)
}

func (p *awsProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
	p.keys = map[string]map[string]bool{}
	p.tokens = nil
}

// keysFor lists the access keys that signed action.
func (p *awsProxy) keysFor(action string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []string
	for k, actions := range p.keys {
		if actions[action] {
			keys = append(keys, k)
		}
	}
	return keys
}

func (p *awsProxy) setFailRegion(region string, fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failRegion[region] = fail
}

// motoSeed writes test data into moto directly (not through the proxy).
type motoSeed struct {
	moto *harness.Moto
}

func (s motoSeed) sm(region string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(s.moto.AWSConfig(), func(o *secretsmanager.Options) { o.Region = region })
}

func (s motoSeed) ssm(region string) *ssm.Client {
	return ssm.NewFromConfig(s.moto.AWSConfig(), func(o *ssm.Options) { o.Region = region })
}

// secret creates a string secret and returns its ARN and version id.
func (s motoSeed) secret(t *testing.T, region, name, value string) (arn, version string) {
	t.Helper()
	harness.RecordSecretValue(t, value)
	out, err := s.sm(region).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value})
	if err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
	return *out.ARN, *out.VersionId
}

func (s motoSeed) binarySecret(t *testing.T, region, name string, value []byte) {
	t.Helper()
	harness.RecordSecretValue(t, string(value))
	if _, err := s.sm(region).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretBinary: value}); err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
}

// putSecret adds a version (AWSCURRENT, or the given stages) and returns its id.
func (s motoSeed) putSecret(t *testing.T, region, name, value string, stages ...string) string {
	t.Helper()
	harness.RecordSecretValue(t, value)
	in := &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &value}
	if len(stages) > 0 {
		in.VersionStages = stages
	}
	out, err := s.sm(region).PutSecretValue(context.Background(), in)
	if err != nil {
		t.Fatalf("put secret %s: %v", name, err)
	}
	return *out.VersionId
}

func (s motoSeed) param(t *testing.T, region, name string, typ ssmtypes.ParameterType, value string) {
	t.Helper()
	harness.RecordSecretValue(t, value)
	if _, err := s.ssm(region).PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: &name, Type: typ, Value: &value, Overwrite: sdkaws.Bool(true),
	}); err != nil {
		t.Fatalf("put parameter %s: %v", name, err)
	}
}

func (s motoSeed) labelParam(t *testing.T, region, name string, version int64, label string) {
	t.Helper()
	if _, err := s.ssm(region).LabelParameterVersion(context.Background(), &ssm.LabelParameterVersionInput{
		Name: &name, ParameterVersion: &version, Labels: []string{label},
	}); err != nil {
		t.Fatalf("label parameter %s: %v", name, err)
	}
}

// query makes a signed query-protocol call (IAM) to moto with the test credentials.
func (s motoSeed) query(t *testing.T, service string, params url.Values) {
	t.Helper()
	body := params.Encode()
	req, err := http.NewRequest(http.MethodPost, s.moto.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := sdkaws.Credentials{AccessKeyID: harness.MotoAccessKeyID, SecretAccessKey: harness.MotoSecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, harness.MotoRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", service, params.Get("Action"), err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", service, params.Get("Action"), resp.Status, out)
	}
}

// role creates an IAM role whose inline policy allows actions on every resource.
func (s motoSeed) role(t *testing.T, name string, actions ...string) string {
	t.Helper()
	s.query(t, "iam", url.Values{"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {name},
		"AssumeRolePolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"oidc"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`}})
	policy, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Effect": "Allow", "Action": actions, "Resource": "*"},
	}})
	s.query(t, "iam", url.Values{"Action": {"PutRolePolicy"}, "Version": {"2010-05-08"}, "RoleName": {name},
		"PolicyName": {name}, "PolicyDocument": {string(policy)}})
	return "arn:aws:iam::123456789012:role/" + name
}

// enforceIAM makes moto check signatures and IAM policies from now on.
func (s motoSeed) enforceIAM(t *testing.T) {
	t.Helper()
	resp, err := http.Post(s.moto.Endpoint+"/moto-api/reset-auth", "text/plain", strings.NewReader("0"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset-auth: %s", resp.Status)
	}
}

// awsRoleMap resolves ServiceAccount roles from a fixed map "namespace/name" → ARN.
type awsRoleMap map[string]string

func (m awsRoleMap) RoleARN(_ context.Context, ns, name string) (string, error) {
	role, ok := m[ns+"/"+name]
	if !ok {
		return "", fmt.Errorf("ServiceAccount %s/%s not found: %w", ns, name, provider.ErrPermissionDenied)
	}
	return role, nil
}

func newAWSBackend(t testing.TB, endpoint string, roles awsbackend.RoleResolver, tweak func(*awsbackend.Options)) *awsbackend.Backend {
	t.Helper()
	opts := awsbackend.Options{DefaultRegion: "us-east-1", Endpoint: endpoint, Roles: roles, MaxBackoff: 10 * time.Millisecond}
	if tweak != nil {
		tweak(&opts)
	}
	b, err := awsbackend.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// awsClassMap serves SecretProviderClasses from memory, as the informer cache would.
type awsClassMap map[types.NamespacedName]*secretsstorev1.SecretProviderClass

func (m awsClassMap) GetClass(_ context.Context, key types.NamespacedName) (*secretsstorev1.SecretProviderClass, error) {
	if c, ok := m[key]; ok {
		return c.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "secrets-store.csi.x-k8s.io", Resource: "secretproviderclasses"}, key.Name)
}

// startAWSDriver runs the real driver on a temp socket with the aws backend registered,
// serving classes; it needs root for the tmpfs mounts.
func startAWSDriver(t *testing.T, classes awsClassMap, backend provider.Provider) *csiclient.Client {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("aws", backend)
	_, c := startDriver(t, classes, reg, "")
	return c
}

// awsClass parses a SecretProviderClass manifest.
func awsClass(t *testing.T, manifest string) *secretsstorev1.SecretProviderClass {
	t.Helper()
	spc := &secretsstorev1.SecretProviderClass{}
	if err := yaml.UnmarshalStrict([]byte(manifest), spc); err != nil {
		t.Fatalf("class: %v", err)
	}
	return spc
}

// fakeSAToken is a JWT-shaped token for a ServiceAccount; moto's STS does not verify
// tokens (the real-token test uses the API server's).
func fakeSAToken(ns, sa string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{"sts.amazonaws.com"}})
	return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("sig"))
}

// awsVolume is a kubelet-like volume of pod ns/name (ServiceAccount sa) for class.
func awsVolume(t *testing.T, ns, pod, sa, class string) csiclient.Volume {
	return csiclient.Volume{
		TargetPath: filepath.Join(t.TempDir(), "target"),
		Pod:        csiclient.Pod{Namespace: ns, Name: pod, UID: "uid-" + pod, ServiceAccount: sa},
		Class:      class,
		Tokens:     map[string]csiclient.Token{"sts.amazonaws.com": {Token: fakeSAToken(ns, sa), ExpiresAt: time.Now().Add(time.Hour)}},
	}
}

// publish publishes v and unpublishes it when the test ends.
func awsPublish(t *testing.T, c *csiclient.Client, v csiclient.Volume) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := c.Publish(ctx, v)
	if err == nil {
		t.Cleanup(func() {
			if err := c.Unpublish(context.Background(), v); err != nil {
				t.Errorf("unpublish %s: %v", v.TargetPath, err)
			}
		})
	}
	return err
}

// readFiles reads the named files of a published volume.
func awsReadFiles(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("read %s: %v", n, err)
			continue
		}
		out[n] = string(b)
	}
	return out
}

func newSecretInput(name, value string) *secretsmanager.CreateSecretInput {
	return &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value}
}
