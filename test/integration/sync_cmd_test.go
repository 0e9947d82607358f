//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/test/harness"
)

// TestSyncCommand runs the `secretmount sync` binary as a Deployment would, against the
// real API server and moto with the built-in AWS backend: the guide's class unchanged, a
// kubernetes.io/basic-auth SecretSync, a rotated value within one poll, and no value in
// the process's output or its /metrics.
func TestSyncCommand(t *testing.T) {
	api := harness.StartAPIServer(t)
	moto := harness.StartMoto(t)
	root := harness.RepoRoot(t)
	api.ApplyCRDs(t, filepath.Join(root, "charts", "secretmount", "crds"))

	bin := harness.SecretmountBinary(t)

	password := fmt.Sprintf("cmd-%x:pw'\"", rand.Uint64())
	harness.RecordSecretValue(t, password, password+"-2", "cmd-secret-key", "AKIACMDTEST")
	sm := secretsmanager.NewFromConfig(moto.AWSConfig())
	putSecret := func(name, doc string, create bool) {
		t.Helper()
		var err error
		if create {
			_, err = sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &doc})
		} else {
			_, err = sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &doc})
		}
		if err != nil {
			t.Fatalf("secretsmanager %s: %v", name, err)
		}
	}
	pgDoc := func(pw string) string {
		b, _ := json.Marshal(map[string]string{"username": "postgres", "password": pw})
		return string(b)
	}
	putSecret("prod/cnpg/postgres-credentials", pgDoc(password), true)
	putSecret("prod/cnpg/s3-credentials", `{"accessKeyId":"AKIACMDTEST","secretAccessKey":"cmd-secret-key"}`, true)

	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "cnpg-sa", map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/cnpg"})
	spc, err := os.ReadFile(filepath.Join(harness.FixturesDir(t), "cnpg-aws-secretproviderclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	api.ApplyManifest(t, strings.Replace(string(spc), "namespace: cnpg-system", "namespace: "+ns, 1))
	api.ApplyManifest(t, `
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: postgres-credentials
  namespace: `+ns+`
spec:
  serviceAccountName: cnpg-sa
  secretProviderClassName: postgres-aws-secrets
  secretObject:
    type: kubernetes.io/basic-auth
    labels:
      cnpg.io/reload: "true"
    data:
      - sourcePath: db-username
        targetKey: username
      - sourcePath: db-password
        targetKey: password
`)

	metricsAddr := syncFreeAddr(t)
	output := &syncCmdOutput{}
	cmd := exec.Command(bin, "sync", "--kubeconfig", api.Kubeconfig, "--namespace", ns,
		"--rotation-poll-interval", "2s", "--metrics-addr", metricsAddr, "--health-addr", "0",
		"--aws-region", harness.MotoRegion, "--aws-endpoint", moto.Endpoint, "--v", "10")
	cmd.Stdout, cmd.Stderr = output, output
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		harness.RecordLeakText(t, harness.LeakLogs, output.String())
		if t.Failed() {
			t.Logf("secretmount sync output:\n%s", output.String())
		}
	})

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("secretmount sync exited while waiting for %s: %v", what, err)
			default:
			}
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	secretHas := func(pw string) func() bool {
		return func() bool {
			s, err := api.Client.CoreV1().Secrets(ns).Get(context.Background(), "postgres-credentials", metav1.GetOptions{})
			return err == nil && string(s.Type) == "kubernetes.io/basic-auth" && s.Labels["cnpg.io/reload"] == "true" &&
				string(s.Data["username"]) == "postgres" && string(s.Data["password"]) == pw && len(s.Data) == 2
		}
	}
	waitFor("the synced Secret", secretHas(password))
	putSecret("prod/cnpg/postgres-credentials", pgDoc(password+"-2"), false)
	waitFor("the rotated value", secretHas(password+"-2"))

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(metrics, []byte(`secretmount_sync_total{result="updated",source="secretsync"}`)) {
		t.Errorf("/metrics has no count of updated SecretSyncs")
	}
	var ss struct {
		Status map[string]any `json:"status"`
	}
	raw, err := api.Client.CoreV1().RESTClient().Get().AbsPath("/apis/secret-sync.x-k8s.io/v1alpha1/namespaces/" + ns + "/secretsyncs/postgres-credentials").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ss); err != nil {
		t.Fatal(err)
	}
	status, _ := yaml.Marshal(ss.Status)
	harness.RecordLeakText(t, harness.LeakMetrics, string(metrics))
	out := output.String() + string(metrics) + string(status)
	for _, v := range []string{password, "cmd-secret-key", "AKIACMDTEST"} {
		if strings.Contains(out, v) {
			t.Errorf("a secret value appears in the output, metrics or status of secretmount sync")
		}
	}
	t.Logf("checked %d bytes of output (at --v=10), %d of metrics and the status for values", len(output.String()), len(metrics))
}

func syncFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// syncCmdOutput collects the child's stdout and stderr.
type syncCmdOutput struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (o *syncCmdOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *syncCmdOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
