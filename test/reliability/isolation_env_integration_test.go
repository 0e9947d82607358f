//go:build integration

package reliability

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// The isolation tests run the real driver on a temp socket against the shared API
// server (classes through the driver's own informer cache) with the real AWS and Vault
// backends in front of moto and OpenBao, and ask through the CSI socket as kubelet would.

// startIsolationDriver runs the driver with reg's backends and the classes the API
// server stores, logging at full verbosity for the leak scan, and returns a kubelet-like
// client. It needs root for the tmpfs mounts.
func startIsolationDriver(t *testing.T, api *harness.APIServer, reg *provider.Registry) (*driver.Driver, *csiclient.Client) {
	t.Helper()
	harness.RequireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	classes, err := driver.NewCacheClassGetter(api.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := classes.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sockets := isoSocketDir(t)
	metrics := prometheus.NewRegistry()
	t.Cleanup(func() { recordMetrics(t, metrics) })
	d, err := driver.New(driver.Options{
		Endpoint: filepath.Join(sockets, "csi.sock"), NodeID: "node-1", ProviderTimeout: 30 * time.Second,
		Classes: classes, Providers: reg, Log: harness.LeakLogger(t), Metrics: metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ctx, d.Run)
	c, err := csiclient.Dial(filepath.Join(sockets, "csi.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return d, c
}

// isoSocketDir is a temp folder with a path short enough for a unix socket.
func isoSocketDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("/tmp", "iso-"+isoRandom(t))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// isoRandom is 8 random hex digits.
func isoRandom(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// isoValue is a fresh value a test seeds, registered for the leak scan.
func isoValue(t *testing.T, label string) string {
	t.Helper()
	v := "iso-" + label + "-" + isoRandom(t) + isoRandom(t) + "-p@ss"
	harness.RecordSecretValue(t, v)
	return v
}

// isoVolume is the volume of a pod of ServiceAccount ns/sa with a token for audience.
func isoVolume(t *testing.T, api *harness.APIServer, ns, sa, class, audience string) csiclient.Volume {
	t.Helper()
	return csiclient.Volume{
		TargetPath: filepath.Join(t.TempDir(), "pod", "secrets"),
		Pod:        csiclient.Pod{Namespace: ns, Name: "pod-" + sa, UID: "uid-" + ns + "-" + sa + "-" + isoRandom(t), ServiceAccount: sa},
		Class:      class,
		Tokens:     map[string]csiclient.Token{audience: {Token: api.Token(t, ns, sa, time.Hour, audience), ExpiresAt: time.Now().Add(time.Hour)}},
	}
}

// isoPublish sends NodePublishVolume and, when it succeeds, unpublishes when the test ends.
func isoPublish(t *testing.T, c *csiclient.Client, v csiclient.Volume) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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

var isoCredentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

// isoAWSCaller names an AWS request by action and by who asked: the ServiceAccount whose
// token an AssumeRoleWithWebIdentity exchanges ("AssumeRoleWithWebIdentity
// system:serviceaccount:ns:sa"), or the access key that signed any other request
// ("GetSecretValue key=ASIA...").
func isoAWSCaller(r *http.Request, body []byte) string {
	action := harness.AWSAction(r, body)
	if action == "AssumeRoleWithWebIdentity" {
		form, _ := url.ParseQuery(string(body))
		return action + " " + jwtSubject(form.Get("WebIdentityToken"))
	}
	if m := isoCredentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return action + " key=" + m[1]
	}
	return action
}

// isoVaultCaller names a Vault request by method and path, and a kubernetes login by the
// ServiceAccount whose token it presents ("login system:serviceaccount:ns:sa").
func isoVaultCaller(r *http.Request, body []byte) string {
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		if strings.HasSuffix(r.URL.Path, "/login") {
			var req struct {
				JWT string `json:"jwt"`
			}
			_ = json.Unmarshal(body, &req)
			return "login " + jwtSubject(req.JWT)
		}
	}
	return r.Method + " " + r.URL.Path
}

// isoCount sums the counts whose key starts with prefix.
func isoCount(counts map[string]int, prefix string) int {
	n := 0
	for k, c := range counts {
		if strings.HasPrefix(k, prefix) {
			n += c
		}
	}
	return n
}

// isoKeys lists the access keys that signed requests of action.
func isoKeys(counts map[string]int, action string) []string {
	var keys []string
	for k := range counts {
		if rest, ok := strings.CutPrefix(k, action+" key="); ok {
			keys = append(keys, rest)
		}
	}
	return keys
}

// isoIAMQuery makes a signed IAM query-protocol call to moto with the harness's test
// credentials (IAM is not enforced yet when the roles are made).
func isoIAMQuery(t *testing.T, moto *harness.Moto, params url.Values) {
	t.Helper()
	body := params.Encode()
	req, err := http.NewRequest(http.MethodPost, moto.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := sdkaws.Credentials{AccessKeyID: harness.MotoAccessKeyID, SecretAccessKey: harness.MotoSecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "iam", harness.MotoRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("iam %s: %v", params.Get("Action"), err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("iam %s: %s: %s", params.Get("Action"), resp.Status, out)
	}
}

// isoIAMRole creates a role whose inline policy allows actions on every resource and
// returns its ARN.
func isoIAMRole(t *testing.T, moto *harness.Moto, name string, actions ...string) string {
	t.Helper()
	isoIAMQuery(t, moto, url.Values{"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {name},
		"AssumeRolePolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"oidc"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`}})
	policy, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Effect": "Allow", "Action": actions, "Resource": "*"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	isoIAMQuery(t, moto, url.Values{"Action": {"PutRolePolicy"}, "Version": {"2010-05-08"}, "RoleName": {name},
		"PolicyName": {name}, "PolicyDocument": {string(policy)}})
	return "arn:aws:iam::123456789012:role/" + name
}

// isoEnforceIAM makes moto check signatures and IAM policies from now on (server-wide).
func isoEnforceIAM(t *testing.T, moto *harness.Moto) {
	t.Helper()
	resp, err := http.Post(moto.Endpoint+"/moto-api/reset-auth", "text/plain", strings.NewReader("0"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset-auth: %s", resp.Status)
	}
}
