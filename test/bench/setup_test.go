//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// Class names stored in the bench namespace.
const (
	classCNPG        = "postgres-aws-secrets" // the guide's fixture, as written
	classTen         = "ten-aws"              // ten Secrets Manager objects
	classTenFake     = "ten-fake"             // ten objects from the ~0-latency fake provider
	fakeProviderName = "benchfake"
	tokenAudience    = "sts.amazonaws.com"
)

// system is one driver under test with the processes it needs on a node.
type system struct {
	name  string
	csi   *csiclient.Client
	procs []*proc // the driver first
	note  string

	unpublishRetries atomic.Int64
}

// env is everything the scenarios share.
type env struct {
	api   *harness.APIServer
	proxy *harness.CountingProxy
	ns    string
	node  string
	ours  *system
	up    *system
	root  string // folder of the kubelet-shaped target paths

	mu     sync.Mutex
	tokens map[string]csiclient.Token // by ServiceAccount
}

func upstreamDriverPath(t *testing.T) string {
	t.Helper()
	version := os.Getenv("UPSTREAM_DRIVER_VERSION")
	if version == "" {
		version = "v1.5.4"
	}
	p := filepath.Join(harness.CacheDir(), "secrets-store-csi-driver-"+version, "secrets-store-csi-driver")
	if _, err := os.Stat(p); err != nil {
		harness.Unavailable(t, "the upstream Secrets Store CSI Driver is not built at %s (run make setup): %v", p, err)
	}
	return p
}

// buildSecretmount builds cmd/secretmount once for all the scenarios of this binary.
func buildSecretmount(t *testing.T) string {
	t.Helper()
	return harness.SecretmountBinary(t)
}

// setup starts the API server, moto behind a counting proxy, both drivers and the
// providers, and stores the classes, secrets and ServiceAccounts the scenarios use.
func setup(t *testing.T, serviceAccounts []string) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		harness.Unavailable(t, "the benchmark mounts tmpfs volumes and needs root")
	}
	upstreamBin := upstreamDriverPath(t)
	root := harness.RepoRoot(t)
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(root, "charts", "secretmount", "crds"))
	// The upstream driver records each mount in a SecretProviderClassPodStatus.
	api.ApplyCRDs(t, filepath.Join(root, "test", "interop", "testdata"))
	moto := harness.SharedMoto(t)
	e := &env{api: api, proxy: harness.NewCountingProxy(t, moto.Endpoint, harness.AWSAction), ns: api.NewNamespace(t), tokens: map[string]csiclient.Token{}}
	e.node = "bench-" + e.ns
	e.root = t.TempDir()
	t.Cleanup(func() { unmountAll(e.root) })

	seedMoto(t, moto)
	e.storeClasses(t)
	for _, sa := range serviceAccounts {
		api.CreateServiceAccount(t, e.ns, sa, map[string]string{aws.RoleAnnotation: "arn:aws:iam::123456789012:role/" + sa})
	}

	bin := buildSecretmount(t)
	providers := t.TempDir()
	serveFake(t, providers, fakeProviderName)
	awsFlags := []string{"--aws-endpoint=" + e.proxy.URL, "--aws-region=" + harness.MotoRegion}

	provSock := filepath.Join(providers, "aws.sock")
	prov := startProc(t, "secretmount provider", bin, provSock, nil, append([]string{"provider",
		"--provider-name=aws", "--provider-volume=" + providers, "--kubeconfig=" + api.Kubeconfig}, awsFlags...)...)
	upSock := filepath.Join(t.TempDir(), "csi.sock")
	upMetrics := freeAddr(t)
	upDriver := startProc(t, "upstream driver", upstreamBin, upSock, []string{"KUBECONFIG=" + api.Kubeconfig},
		"--endpoint=unix://"+upSock, "--nodeid="+e.node, "--provider-volume="+providers,
		"--additional-provider-volume-paths="+filepath.Join(providers, "none"), "--metrics-addr="+upMetrics)
	upDriver.metrics = "http://" + upMetrics + "/metrics"
	e.up = &system{name: "upstream", procs: []*proc{upDriver, prov}, csi: dial(t, upSock),
		note: "upstream driver v1.5.4 with `secretmount provider` as its aws provider (the upstream AWS provider's module is not served by the module proxy)"}

	ourSock := filepath.Join(t.TempDir(), "csi.sock")
	ourMetrics := freeAddr(t)
	ourDriver := startProc(t, "secretmount driver", bin, ourSock, nil, append([]string{"driver",
		"--endpoint=unix://" + ourSock, "--node-id=" + e.node, "--kubeconfig=" + api.Kubeconfig,
		"--provider-volume=" + providers, "--metrics-addr=" + ourMetrics}, awsFlags...)...)
	ourDriver.metrics = "http://" + ourMetrics + "/metrics"
	e.ours = &system{name: "ours", procs: []*proc{ourDriver}, csi: dial(t, ourSock),
		note: "`secretmount driver` with its built-in aws backend; the fake provider as an external socket"}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range []*system{e.ours, e.up} {
		if err := s.csi.WaitReady(ctx); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	return e
}

func dial(t *testing.T, socket string) *csiclient.Client {
	t.Helper()
	c, err := csiclient.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// seedMoto writes the guide's two secrets and ten more into moto, not through the proxy.
func seedMoto(t *testing.T, moto *harness.Moto) {
	t.Helper()
	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	values := map[string]string{
		"prod/cnpg/postgres-credentials": `{"username":"postgres","password":"bench-password"}`,
		"prod/cnpg/s3-credentials":       `{"accessKeyId":"AKIABENCH","secretAccessKey":"bench-secret-key"}`,
	}
	for i := range 10 {
		values[fmt.Sprintf("bench/ten-%d", i)] = fmt.Sprintf(`{"username":"user%d","password":"pass-%d"}`, i, i)
	}
	for name, value := range values {
		_, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: sdkaws.String(name), SecretString: sdkaws.String(value)})
		if err != nil {
			if _, err := sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: sdkaws.String(name), SecretString: sdkaws.String(value)}); err != nil {
				t.Fatalf("seeding %s in moto: %v", name, err)
			}
		}
	}
}

func (e *env) storeClasses(t *testing.T) {
	t.Helper()
	path := filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	var cnpg secretsstorev1.SecretProviderClass
	if err := yaml.Unmarshal(b, &cnpg); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	objects := ""
	for i := range 10 {
		objects += fmt.Sprintf("- objectName: bench/ten-%d\n  objectType: secretsmanager\n", i)
	}
	fake := ""
	for i := range 10 {
		fake += fmt.Sprintf("  - |\n    objectName: object-%d\n", i)
	}
	classes := []secretsstorev1.SecretProviderClass{
		cnpg,
		{ObjectMeta: metav1.ObjectMeta{Name: classTen}, Spec: secretsstorev1.SecretProviderClassSpec{Provider: "aws", Parameters: map[string]string{"objects": objects}}},
		{ObjectMeta: metav1.ObjectMeta{Name: classTenFake}, Spec: secretsstorev1.SecretProviderClassSpec{Provider: fakeProviderName, Parameters: map[string]string{"objects": "array:\n" + fake}}},
	}
	for _, spc := range classes {
		spc.Namespace = e.ns
		spc.APIVersion = "secrets-store.csi.x-k8s.io/v1"
		spc.Kind = "SecretProviderClass"
		b, err := yaml.Marshal(&spc)
		if err != nil {
			t.Fatal(err)
		}
		e.api.ApplyManifest(t, string(b))
	}
}

// token is a ServiceAccount token for the AWS audience, minted once per ServiceAccount.
func (e *env) token(t *testing.T, sa string) csiclient.Token {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok, ok := e.tokens[sa]; ok {
		return tok
	}
	tok := csiclient.Token{Token: e.api.Token(t, e.ns, sa, 2*time.Hour, tokenAudience), ExpiresAt: time.Now().Add(2 * time.Hour)}
	e.tokens[sa] = tok
	return tok
}

// volumes creates n pods of serviceAccount sas[i%len(sas)] bound to the node, as the
// scheduler would, and returns one kubelet-shaped volume of class for each.
func (e *env) volumes(t *testing.T, n int, class string, sas ...string) []csiclient.Volume {
	t.Helper()
	return e.podVolumes(t, n, class, func(sa string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: e.ns},
			Spec: corev1.PodSpec{NodeName: e.node, ServiceAccountName: sa,
				Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
		}
	}, sas...)
}

// podVolumes creates n pods made by podFor for serviceAccount sas[i%len(sas)], 8 at a
// time, and returns the kubelet-shaped volume "secrets" of class for each.
func (e *env) podVolumes(t *testing.T, n int, class string, podFor func(sa string) *corev1.Pod, sas ...string) []csiclient.Volume {
	t.Helper()
	out := make([]csiclient.Volume, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		sa := sas[i%len(sas)]
		tok := e.token(t, sa)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pod, err := e.api.Client.CoreV1().Pods(e.ns).Create(context.Background(), podFor(sa), metav1.CreateOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = csiclient.Volume{
				TargetPath: filepath.Join(e.root, "pods", string(pod.UID), "volumes", "kubernetes.io~csi", "secrets", "mount"),
				Pod:        csiclient.Pod{Namespace: e.ns, Name: pod.Name, UID: string(pod.UID), ServiceAccount: sa},
				Class:      class,
				Tokens:     map[string]csiclient.Token{tokenAudience: tok},
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("creating a pod of class %s: %v", class, err)
		}
	}
	return out
}
