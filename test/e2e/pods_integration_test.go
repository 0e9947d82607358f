//go:build integration

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretmount/secretmount/test/harness"
)

const (
	driverName = "secrets-store.csi.k8s.io"
	mountPath  = "/mnt/secrets-store"
	// waitTimeout bounds every wait for the node to act; the tests assert what happens,
	// not how fast.
	waitTimeout = 2 * time.Minute
)

// readerPod is a host-network pod on the node whose container reports what it sees in
// the class's inline CSI volume.
func (n *Node) readerPod(namespace, name, serviceAccount, class string) *corev1.Pod {
	grace := int64(1)
	automount := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      n.Name,
			HostNetwork:                   true,
			ServiceAccountName:            serviceAccount,
			AutomountServiceAccountToken:  &automount,
			TerminationGracePeriodSeconds: &grace,
			RestartPolicy:                 corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:            "reader",
				Image:           readerImage.Ref,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{mountPath},
				VolumeMounts:    []corev1.VolumeMount{{Name: "secrets", MountPath: mountPath, ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{
				Name: "secrets",
				VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
					Driver:           driverName,
					ReadOnly:         &[]bool{true}[0],
					VolumeAttributes: map[string]string{"secretProviderClass": class},
				}},
			}},
		},
	}
}

func createPod(t *testing.T, api *harness.APIServer, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := api.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return out
}

// deletePod deletes a pod and waits until kubelet has removed it from the API server,
// which kubelet does only once its containers are gone and its volumes are torn down.
func deletePod(ctx context.Context, api *harness.APIServer, namespace, name string) error {
	pods := api.Client.CoreV1().Pods(namespace)
	err := pods.Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting pod %s/%s: %w", namespace, name, err)
	}
	for {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s still there after its deletion (kubelet did not finish tearing it down): %w", namespace, name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitFor polls check until it returns nil or waitTimeout passes, then fails t with the
// last error.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s: %v", what, waitTimeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// File and View mirror what images/reader prints.
type File struct {
	Name   string `json:"name"`
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type View struct {
	Dir   string `json:"dir"`
	Files []File `json:"files"`
	Error string `json:"error,omitempty"`
}

// podLogFile is where kubelet keeps the container's log: reading it there needs no
// connection from the API server to kubelet.
func (n *Node) podLogFile(pod *corev1.Pod, container string) string {
	return filepath.Join(n.PodLogsDir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), container, "0.log")
}

// lastView returns the latest view the reader logged (CRI log lines: time, stream, tag,
// message).
func (n *Node) lastView(pod *corev1.Pod) (*View, error) {
	f, err := os.Open(n.podLogFile(pod, "reader"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var last *View
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.SplitN(s.Text(), " ", 4)
		if len(fields) != 4 || fields[1] != "stdout" || fields[2] != "F" {
			continue
		}
		var v View
		if err := json.Unmarshal([]byte(fields[3]), &v); err != nil {
			return nil, fmt.Errorf("reader log line %q: %w", fields[3], err)
		}
		last = &v
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if last == nil {
		return nil, errors.New("the reader has logged nothing yet")
	}
	return last, nil
}

// podVolumeMounts lists the mounts under the pod's folder in kubelet's root.
func (n *Node) podVolumeMounts(pod *corev1.Pod) ([]mountPoint, error) {
	return mountsUnder(filepath.Join(n.RootDir, "pods", string(pod.UID)))
}

// secretsVolumePath is where kubelet asks the driver to publish the pod's "secrets"
// volume.
func (n *Node) secretsVolumePath(pod *corev1.Pod) string {
	return filepath.Join(n.RootDir, "pods", string(pod.UID), "volumes", "kubernetes.io~csi", "secrets", "mount")
}
