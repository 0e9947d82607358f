//go:build integration

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretmount/secretmount/test/harness"
	"github.com/secretmount/secretmount/test/install"
)

const (
	guideNamespace = "cnpg-system"
	guideSA        = "cnpg-sa"
	awsClassName   = "postgres-aws-secrets"
	vaultClassName = "postgres-vault-secrets"
	// vaultClusterAddress is the in-cluster address the Vault twin names.
	vaultClusterAddress = "vault.vault-system:8200"
	// pollInterval is the driver's and the sync controller's rotation poll.
	pollInterval = 2 * time.Second
)

// cluster is the API server, the backends, the node and secretmount's two roles as host
// processes.
type cluster struct {
	api    *harness.APIServer
	moto   *harness.Moto
	vault  *harness.Vault
	node   *Node
	sm     *secretsmanager.Client
	driver *harness.Program
	sync   *harness.Program
	// values are every secret value the tests wrote, for the checks that none leaks.
	values []string
	// vaultPassword is the current db-password in Vault.
	vaultPassword string

	// awsProxy and vaultProxy stand between secretmount and the backends and keep the
	// ServiceAccount tokens that reached STS and Vault's kubernetes login.
	awsProxy, vaultProxy *harness.CountingProxy
	tokensMu             gosync.Mutex
	tokens               map[string][]string // backend → tokens, in order
}

func randomValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	harness.RequireRoot(t)
	root := harness.RepoRoot(t)
	fixtures := harness.FixturesDir(t)
	c := &cluster{}
	warmed := warmSecretmountBuild(t, root)
	mark := time.Now()
	phase := func(what string) {
		t.Logf("%s in %s", what, time.Since(mark).Round(100*time.Millisecond))
		mark = time.Now()
	}
	c.api = harness.StartAPIServer(t)
	c.moto = harness.StartMoto(t)
	c.vault = harness.StartVault(t)
	phase("API server, moto and Vault up")
	c.sm = secretsmanager.NewFromConfig(c.moto.AWSConfig())

	c.api.ApplyCRDs(t, filepath.Join(root, "charts", "secretmount", "crds"))
	c.applyChartCSIDriver(t, root)
	c.api.CreateNamespace(t, guideNamespace)
	c.api.CreateServiceAccount(t, guideNamespace, guideSA, map[string]string{
		"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/cnpg-secrets",
	})

	c.vault.ConfigureKubernetesAuth(t, c.api, "kubernetes")
	script := filepath.Join(fixtures, "cnpg-vault-setup.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+c.vault.Addr, "VAULT_TOKEN="+c.vault.RootToken)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	// The values cnpg-vault-setup.sh writes.
	c.values = append(c.values, "your-secure-password", "your-access-key", "your-secret-key")
	c.vaultPassword = "your-secure-password"

	c.api.ApplyYAML(t, filepath.Join(fixtures, "cnpg-aws-secretproviderclass.yaml"), filepath.Join(fixtures, "cnpg-vault-secretproviderclass.yaml"))

	phase("CRDs, CSIDriver, classes and backends set up")
	c.node = StartNode(t, c.api)
	phase("node " + c.node.Name + " Ready (images built and imported)")
	c.tokens = map[string][]string{}
	c.awsProxy = harness.NewCountingProxy(t, c.moto.Endpoint, func(r *http.Request, body []byte) string {
		action := harness.AWSAction(r, body)
		if action == "AssumeRoleWithWebIdentity" {
			if form, err := url.ParseQuery(string(body)); err == nil {
				c.keepToken("sts", form.Get("WebIdentityToken"))
			}
		}
		return action
	})
	c.vaultProxy = harness.NewCountingProxy(t, c.vault.Addr, func(r *http.Request, body []byte) string {
		if strings.HasSuffix(r.URL.Path, "/login") {
			var login struct{ JWT string }
			if err := json.Unmarshal(body, &login); err == nil {
				c.keepToken("vault", login.JWT)
			}
		}
		return harness.MethodPath(r, body)
	})
	proxy := startNameProxy(t, map[string]string{vaultClusterAddress: c.vaultProxy.URL})
	<-warmed
	c.startSecretmount(t, proxy)
	phase("driver registered with kubelet, sync running")
	return c
}

// warmSecretmountBuild compiles cmd/secretmount into the build cache while the
// components start, so harness.SecretmountBinary only links; the returned channel closes
// when the compile is over. Its errors are left to SecretmountBinary, which reports them.
func warmSecretmountBuild(t *testing.T, root string) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./cmd/secretmount")
	cmd.Dir = root
	if err := cmd.Start(); err != nil {
		close(done)
		return done
	}
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return done
}

// applyChartCSIDriver creates the CSIDriver object as the Helm chart renders it (pod info
// on mount, the sts.amazonaws.com and vault token audiences, requiresRepublish).
func (c *cluster) applyChartCSIDriver(t *testing.T, root string) {
	t.Helper()
	rendered, err := install.Render(filepath.Join(root, "charts", "secretmount"), install.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := rendered.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "CSIDriver" {
			continue
		}
		b, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		c.api.ApplyManifest(t, string(b))
		return
	}
	t.Fatal("the chart renders no CSIDriver")
}

// startSecretmount runs `secretmount driver` on kubelet's plugin folder and `secretmount
// sync`, as the chart's DaemonSet and Deployment would, and waits until kubelet has
// registered the driver (the node's CSINode lists it).
func (c *cluster) startSecretmount(t *testing.T, proxy string) {
	t.Helper()
	mark := time.Now()
	bin := harness.SecretmountBinary(t)
	t.Logf("secretmount built in %s", time.Since(mark).Round(100*time.Millisecond))
	env := []string{hostPath, "LANG=C.UTF-8",
		"HTTP_PROXY=" + proxy, "http_proxy=" + proxy, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"}
	common := []string{
		"--kubeconfig", c.api.Kubeconfig,
		"--aws-endpoint", c.awsProxy.URL,
		"--aws-region", harness.MotoRegion,
		"--rotation-poll-interval", pollInterval.String(),
		"--metrics-addr", "0",
		"--vault-version-key-secret", "default/secretmount-vault-version-key",
	}
	socketDir := filepath.Join(c.node.PluginsDir(), driverName)
	if err := os.MkdirAll(socketDir, 0o750); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(socketDir, "csi.sock")
	args := []string{"driver",
		"--endpoint", "unix://" + socket,
		"--node-id", c.node.Name,
		"--state-dir", c.driverStateDir(),
		"--enable-secret-rotation",
		// The driver registers itself with kubelet's plugin watcher; no
		// csi-node-driver-registrar sidecar.
		"--registration-dir", c.node.RegistryDir(),
		"--v", "2",
	}
	c.driver = harness.StartProgram(t, harness.ProgramSpec{
		Name: "driver", Path: bin, Env: env,
		Args:  append(args, common...),
		Ready: harness.FileExists(socket),
	})
	// The driver must outlive the pods: kubelet unpublishes their volumes through it.
	t.Cleanup(func() { c.node.deletePods(t) })
	waitFor(t, "kubelet registered the driver (CSINode "+c.node.Name+" lists "+driverName+")", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		csiNode, err := c.api.Client.StorageV1().CSINodes().Get(ctx, c.node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, d := range csiNode.Spec.Drivers {
			if d.Name == driverName && d.NodeID == c.node.Name {
				return nil
			}
		}
		return fmt.Errorf("CSINode lists %v", csiNode.Spec.Drivers)
	})

	c.sync = harness.StartProgram(t, harness.ProgramSpec{
		Name: "sync", Path: bin, Env: env,
		Args: append([]string{"sync", "--health-addr", "0"}, common...),
	})
}

// processLogs maps each host process's name to its output so far: the driver, the sync
// controller, and kubelet and containerd, which log the driver's errors.
func (c *cluster) processLogs(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{"driver": c.driver.Log, "sync": c.sync.Log}
	for _, l := range c.node.Logs {
		files[strings.TrimSuffix(filepath.Base(l), ".log")] = l
	}
	out := map[string]string{}
	for name, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

func (c *cluster) putAWS(t *testing.T, name string, doc map[string]string, create bool) string {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if create {
		_, err = c.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: &s})
	} else {
		_, err = c.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &s})
	}
	if err != nil {
		t.Fatalf("writing AWS secret %s: %v", name, err)
	}
	for k, v := range doc {
		// The user name is no secret, and "postgres" is part of every object's name.
		if k != "username" && !slices.Contains(c.values, v) {
			c.values = append(c.values, v)
		}
	}
	return s
}

func (c *cluster) putVault(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := c.vault.Client.Logical().Write(path, map[string]any{"data": data}); err != nil {
		t.Fatalf("writing Vault %s: %v", path, err)
	}
	for k, v := range data {
		if s, ok := v.(string); ok && k != "username" {
			c.values = append(c.values, s)
			if path == "cnpg/data/postgres-credentials" && k == "password" {
				c.vaultPassword = s
			}
		}
	}
}

func (c *cluster) keepToken(backend, token string) {
	if token == "" {
		return
	}
	c.tokensMu.Lock()
	defer c.tokensMu.Unlock()
	c.tokens[backend] = append(c.tokens[backend], token)
}

// checkPodToken checks that a token kubelet requested for pod (bound to it, for
// audience) reached backend: the API server's TokenReview names the pod's ServiceAccount
// and the pod itself.
func (c *cluster) checkPodToken(t *testing.T, backend, audience string, pod *corev1.Pod) {
	t.Helper()
	c.tokensMu.Lock()
	tokens := slices.Clone(c.tokens[backend])
	c.tokensMu.Unlock()
	wantUser := "system:serviceaccount:" + pod.Namespace + ":" + pod.Spec.ServiceAccountName
	var seen []string
	for _, tok := range tokens {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		review, err := c.api.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tok, Audiences: []string{audience}},
		}, metav1.CreateOptions{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		st := review.Status
		pods := st.User.Extra["authentication.kubernetes.io/pod-name"]
		seen = append(seen, fmt.Sprintf("authenticated=%t user=%s pod=%v", st.Authenticated, st.User.Username, pods))
		if st.Authenticated && st.User.Username == wantUser && slices.Equal(pods, authenticationv1.ExtraValue{pod.Name}) {
			return
		}
	}
	t.Errorf("no token of %s for audience %s bound to pod %s/%s reached %s; %d tokens seen: %v", wantUser, audience, pod.Namespace, pod.Name, backend, len(tokens), seen)
}

func (c *cluster) driverStateDir() string { return filepath.Join(c.node.Dir, "driver-state") }
