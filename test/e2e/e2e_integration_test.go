//go:build integration

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRealNode starts one node and runs every scenario on it in turn: the node is what
// costs, and each scenario deletes its own pods.
func TestRealNode(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("API server, moto, Vault, containerd, kubelet, driver and sync up in %s", time.Since(start).Round(100*time.Millisecond))

	t.Run("AWSClassInRunningPod", c.testAWSClass)
	t.Run("VaultClassInRunningPod", c.testVaultClass)
	t.Run("ServiceAccountNotAllowed", c.testNotAllowed)
	t.Run("SecretSyncWithoutPod", c.testSecretSyncWithoutPod)
	t.Run("NoValueInProcessLogs", func(t *testing.T) {
		logs := c.processLogs(t)
		if len(logs) != 4 {
			t.Fatalf("logs of %v, want the driver, sync, kubelet and containerd", keys(logs))
		}
		for name, log := range logs {
			if log == "" {
				t.Errorf("the %s log is empty", name)
			}
			for i, v := range c.values {
				if strings.Contains(log, v) {
					t.Errorf("secret value #%d written by the test appears in the %s log", i, name)
				}
			}
		}
	})
}

// testAWSClass mounts the guide's AWS class (moto behind it, the pod's token exchanged
// through STS for the ServiceAccount's IRSA role) into a running pod.
func (c *cluster) testAWSClass(t *testing.T) {
	password, accessKey, secretKey := randomValue(t, "aws-pw"), randomValue(t, "aws-ak"), randomValue(t, "aws-sk")
	pgDoc := c.putAWS(t, "prod/cnpg/postgres-credentials", map[string]string{"username": "postgres", "password": password}, true)
	s3Doc := c.putAWS(t, "prod/cnpg/s3-credentials", map[string]string{"accessKeyId": accessKey, "secretAccessKey": secretKey}, true)

	pod := createPod(t, c.api, c.node.readerPod(guideNamespace, "aws-reader", guideSA, awsClassName))
	want := map[string]string{
		"db-username":                    "postgres",
		"db-password":                    password,
		"prod_cnpg_postgres-credentials": pgDoc,
		"prod_cnpg_s3-credentials":       s3Doc,
		"s3-access-key":                  accessKey,
		"s3-secret-key":                  secretKey,
	}
	c.waitForView(t, pod, want)
	c.checkPodToken(t, "sts", "sts.amazonaws.com", pod)
	c.waitForSecret(t, "postgres-credentials", map[string]string{"username": "postgres", "password": password})
	c.waitForSecret(t, "s3-credentials", map[string]string{"access-key": accessKey, "secret-key": secretKey})

	rotated := randomValue(t, "aws-pw-rotated")
	want["db-password"] = rotated
	want["prod_cnpg_postgres-credentials"] = c.putAWS(t, "prod/cnpg/postgres-credentials", map[string]string{"username": "postgres", "password": rotated}, false)
	rotatedAt := time.Now()
	c.waitForView(t, pod, want)
	t.Logf("the rotation reached the container in %s (poll interval %s)", time.Since(rotatedAt).Round(100*time.Millisecond), pollInterval)
	c.waitForSecret(t, "postgres-credentials", map[string]string{"username": "postgres", "password": rotated})

	c.deleteAndCheckUnmounted(t, pod, true)
	// The pod was the Secrets' only owner: its unpublish releases and deletes them.
	c.waitForSecretGone(t, "postgres-credentials")
	c.waitForSecretGone(t, "s3-credentials")
}

// testVaultClass mounts the Vault twin (OpenBao behind it, kubernetes auth with the token
// kubelet requested for the pod, audience vault) into a running pod.
func (c *cluster) testVaultClass(t *testing.T) {
	pod := createPod(t, c.api, c.node.readerPod(guideNamespace, "vault-reader", guideSA, vaultClassName))
	want := map[string]string{
		"db-username":   "postgres",
		"db-password":   "your-secure-password",
		"s3-access-key": "your-access-key",
		"s3-secret-key": "your-secret-key",
	}
	c.waitForView(t, pod, want)
	c.checkPodToken(t, "vault", "vault", pod)
	c.waitForSecret(t, "postgres-credentials", map[string]string{"username": "postgres", "password": "your-secure-password"})
	c.waitForSecret(t, "s3-credentials", map[string]string{"access_key": "your-access-key", "secret_key": "your-secret-key"})

	rotated := randomValue(t, "vault-pw-rotated")
	c.putVault(t, "cnpg/data/postgres-credentials", map[string]any{"username": "postgres", "password": rotated})
	want["db-password"] = rotated
	rotatedAt := time.Now()
	c.waitForView(t, pod, want)
	t.Logf("the rotation reached the container in %s (poll interval %s)", time.Since(rotatedAt).Round(100*time.Millisecond), pollInterval)
	c.waitForSecret(t, "postgres-credentials", map[string]string{"username": "postgres", "password": rotated})

	c.deleteAndCheckUnmounted(t, pod, true)
	c.waitForSecretGone(t, "postgres-credentials")
	c.waitForSecretGone(t, "s3-credentials")
}

// testNotAllowed runs a pod whose ServiceAccount the Vault role does not bind: kubelet
// never starts its container, and the pod's events say why without a secret value.
func (c *cluster) testNotAllowed(t *testing.T) {
	c.api.CreateServiceAccount(t, guideNamespace, "intruder", nil)
	pod := createPod(t, c.api, c.node.readerPod(guideNamespace, "intruder-reader", "intruder", vaultClassName))

	// Two failed mounts: kubelet tried again after the first and still did not start the
	// container.
	var failed []corev1.Event
	waitFor(t, "two failed mounts reported for pod "+pod.Name, func() error {
		evs, err := c.podEvents(pod)
		if err != nil {
			return err
		}
		failed = failed[:0]
		var count int32
		for _, e := range evs {
			if e.Reason == "FailedMount" {
				failed = append(failed, e)
				count += max(e.Count, 1)
			}
		}
		if count < 2 {
			return fmt.Errorf("%d events, %d FailedMount", len(evs), count)
		}
		return nil
	})
	for _, e := range failed {
		t.Logf("event %s: %s", e.Reason, e.Message)
		if !strings.Contains(e.Message, "PermissionDenied") || !strings.Contains(e.Message, vaultClassName) {
			t.Errorf("FailedMount event %q does not say the mount was denied for %s", e.Message, vaultClassName)
		}
	}
	evs, err := c.podEvents(pod)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		for _, v := range c.values {
			if strings.Contains(e.Message, v) {
				t.Errorf("event %s of pod %s holds a secret value", e.Reason, pod.Name)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := c.api.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodPending {
		t.Errorf("pod phase %s, want Pending", got.Status.Phase)
	}
	for _, cs := range got.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.RestartCount != 0 {
			t.Errorf("container %s state %+v: it should never have started", cs.Name, cs.State)
		}
	}
	if _, err := os.Stat(c.node.podLogFile(got, "reader")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container has a log file (%v): it should never have started", err)
	}
	c.deleteAndCheckUnmounted(t, got, false)
}

// testSecretSyncWithoutPod asks the sync controller for the Vault class's credentials
// with no pod on any node.
func (c *cluster) testSecretSyncWithoutPod(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := c.api.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Fatalf("%d pods exist; this scenario needs none", len(pods.Items))
	}
	c.api.ApplyManifest(t, `apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata: {name: vault-postgres-credentials, namespace: `+guideNamespace+`}
spec:
  secretProviderClassName: `+vaultClassName+`
  serviceAccountName: `+guideSA+`
  secretObject:
    type: kubernetes.io/basic-auth
    data:
      - {sourcePath: db-username, targetKey: username}
      - {sourcePath: db-password, targetKey: password}
`)
	c.waitForSecret(t, "vault-postgres-credentials", map[string]string{"username": "postgres", "password": c.vaultPassword})
}

// waitForView waits until the reader in pod has seen exactly the files in want (name →
// content), each with mode 0644 and the content's size and digest.
func (c *cluster) waitForView(t *testing.T, pod *corev1.Pod, want map[string]string) {
	t.Helper()
	var wantFiles []File
	for name, content := range want {
		sum := sha256.Sum256([]byte(content))
		wantFiles = append(wantFiles, File{Name: name, Mode: "0644", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])})
	}
	sort.Slice(wantFiles, func(i, j int) bool { return wantFiles[i].Name < wantFiles[j].Name })
	waitFor(t, fmt.Sprintf("the container of pod %s sees the %d expected files", pod.Name, len(want)), func() error {
		v, err := c.node.lastView(pod)
		if err != nil {
			return err
		}
		if v.Error != "" {
			return fmt.Errorf("the reader saw an error: %s", v.Error)
		}
		if !reflect.DeepEqual(v.Files, wantFiles) {
			return fmt.Errorf("the reader sees %+v, want %+v (digests of the expected contents)", v.Files, wantFiles)
		}
		return nil
	})
}

func (c *cluster) waitForSecret(t *testing.T, name string, want map[string]string) {
	t.Helper()
	waitFor(t, "Secret "+guideNamespace+"/"+name+" holds the expected keys and values", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := c.api.Client.CoreV1().Secrets(guideNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(s.Data) != len(want) {
			return fmt.Errorf("keys %v, want %d keys", keys(s.Data), len(want))
		}
		for k, v := range want {
			if string(s.Data[k]) != v {
				return fmt.Errorf("key %s differs from the expected value (keys %v)", k, keys(s.Data))
			}
		}
		return nil
	})
}

func (c *cluster) waitForSecretGone(t *testing.T, name string) {
	t.Helper()
	waitFor(t, "Secret "+guideNamespace+"/"+name+" deleted", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.api.Client.CoreV1().Secrets(guideNamespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("still there")
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// deleteAndCheckUnmounted deletes pod and checks that kubelet tore its volume down: the
// tmpfs the driver mounted at the volume's path (when published is true) is gone from
// this mount namespace, and nothing else is mounted under the pod's folder.
func (c *cluster) deleteAndCheckUnmounted(t *testing.T, pod *corev1.Pod, published bool) {
	t.Helper()
	before, err := c.node.podVolumeMounts(pod)
	if err != nil {
		t.Fatal(err)
	}
	want := []mountPoint{}
	if published {
		want = append(want, mountPoint{Path: c.node.secretsVolumePath(pod), FSType: "tmpfs"})
	}
	if !reflect.DeepEqual(append([]mountPoint{}, before...), want) {
		t.Errorf("mounts under pod %s's folder before deletion: %+v, want %+v", pod.Name, before, want)
	}
	if got, want := c.driverRecords(t), len(want); got != want {
		t.Errorf("the driver keeps %d published-volume records before pod %s is deleted, want %d", got, pod.Name, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := deletePod(ctx, c.api, pod.Namespace, pod.Name); err != nil {
		t.Fatal(err)
	}
	after, err := c.node.podVolumeMounts(pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 0 {
		t.Errorf("after pod %s was deleted these are still mounted: %+v", pod.Name, after)
	}
	// The driver drops a volume's record when kubelet unpublishes it.
	if got := c.driverRecords(t); got != 0 {
		t.Errorf("the driver keeps %d published-volume records after pod %s was deleted, want 0", got, pod.Name)
	}
}

// driverRecords counts the driver's records of published volumes (one JSON file each in
// its --state-dir).
func (c *cluster) driverRecords(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.driverStateDir(), "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func (c *cluster) podEvents(pod *corev1.Pod) ([]corev1.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := c.api.Client.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod.Name + ",involvedObject.uid=" + string(pod.UID),
	})
	if err != nil {
		return nil, err
	}
	return evs.Items, nil
}
