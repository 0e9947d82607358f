//go:build integration

package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// cluster is the API server with the CRDs both drivers need.
func cluster(t *testing.T) *harness.APIServer {
	t.Helper()
	api := harness.SharedAPIServer(t)
	root := harness.RepoRoot(t)
	api.ApplyCRDs(t, filepath.Join(root, "charts", "secretmount", "crds"))
	// The upstream driver records each mount in a SecretProviderClassPodStatus.
	api.ApplyCRDs(t, filepath.Join(root, "test", "interop", "testdata"))
	return api
}

// storeClass creates spc in namespace ns.
func storeClass(t *testing.T, api *harness.APIServer, ns string, spc *secretsstorev1.SecretProviderClass) {
	t.Helper()
	spc = spc.DeepCopy()
	spc.Namespace = ns
	spc.APIVersion = "secrets-store.csi.x-k8s.io/v1"
	spc.Kind = "SecretProviderClass"
	b, err := yaml.Marshal(spc)
	if err != nil {
		t.Fatal(err)
	}
	api.ApplyManifest(t, string(b))
}

// createPod stores a pod bound to nodeID, as the scheduler would have, so the upstream
// driver can find it and own its status object with it.
func createPod(t *testing.T, api *harness.APIServer, ns, name, serviceAccount, nodeID string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:           nodeID,
			ServiceAccountName: serviceAccount,
			Containers:         []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
		},
	}
	out, err := api.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	return out
}

// kubeletTokens is the serviceAccount.tokens volume attribute kubelet sends for a CSI
// driver whose CSIDriver object asks for these audiences.
func kubeletTokens(t *testing.T, api *harness.APIServer, ns, serviceAccount string, audiences ...string) string {
	t.Helper()
	type token struct {
		Token               string    `json:"token"`
		ExpirationTimestamp time.Time `json:"expirationTimestamp"`
	}
	out := map[string]token{}
	for _, aud := range audiences {
		out[aud] = token{Token: api.Token(t, ns, serviceAccount, time.Hour, aud), ExpirationTimestamp: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var podStatusResource = schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasspodstatuses"}

// podStatusObjects returns the object versions the upstream driver recorded for a mount.
func podStatusObjects(t *testing.T, api *harness.APIServer, ns, pod, class string) map[string]string {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%s", pod, ns, class)
	obj, err := api.Dynamic.Resource(podStatusResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("SecretProviderClassPodStatus %s/%s: %v", ns, name, err)
	}
	var st secretsstorev1.SecretProviderClassPodStatus
	b, _ := json.Marshal(obj.Object)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range st.Status.Objects {
		out[o.ID] = o.Version
	}
	return out
}
