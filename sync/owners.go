package sync

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// podRef names a pod that mounts a volume whose class syncs a Secret.
type podRef struct {
	Namespace, Name string
	UID             types.UID
}

// podManager is the field manager that owns one pod's ownerReference on a Secret. One
// manager per pod lets server-side apply merge the references of every pod on every node
// and drop exactly one of them, with no shared list to read and rewrite, and it needs no
// memory of the node: an unpublish after a driver restart still knows its pod.
func podManager(uid types.UID) string { return FieldManager + "-pod-" + string(uid) }

// addPodOwner makes pod an owner of the Secret ns/name whose UID is secretUID. The UID
// in the apply is a precondition: a Secret deleted and recreated meanwhile is not touched.
func (w *Writer) addPodOwner(ctx context.Context, namespace, name string, pod podRef) error {
	ctx = quiet(ctx)
	secrets := w.client.CoreV1().Secrets(namespace)
	live, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("failed to read secret %s/%s to add pod %s as owner: %w", namespace, name, pod.Name, err)
	}
	if hasOwner(live, pod.UID) {
		return nil
	}
	ac := corev1ac.Secret(name, namespace).WithUID(live.UID).WithOwnerReferences(
		metav1ac.OwnerReference().WithAPIVersion("v1").WithKind("Pod").WithName(pod.Name).WithUID(pod.UID))
	if _, err := secrets.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: podManager(pod.UID), Force: true}); err != nil {
		return fmt.Errorf("failed to add pod %s as owner of secret %s/%s: %w", pod.Name, namespace, name, err)
	}
	return nil
}

// releasePodOwner drops pod's ownerReference from the Secret, and deletes the Secret when
// that was its last owner and secretmount made it. The delete carries the resourceVersion
// as a precondition, so a pod of another node that added itself in between keeps the
// Secret (the delete fails with a conflict and the caller retries).
func (w *Writer) releasePodOwner(ctx context.Context, namespace, name string, pod podRef) (deleted bool, err error) {
	ctx = quiet(ctx)
	secrets := w.client.CoreV1().Secrets(namespace)
	live, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read secret %s/%s to release pod %s: %w", namespace, name, pod.Name, err)
	}
	if !managedBy(live, FieldManager) {
		return false, nil // not ours (or taken back by someone): leave it alone
	}
	if hasOwner(live, pod.UID) {
		// Applying nothing with the pod's manager removes the one field it owns.
		ac := corev1ac.Secret(name, namespace).WithUID(live.UID)
		live, err = secrets.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: podManager(pod.UID), Force: true})
		if err != nil {
			return false, fmt.Errorf("failed to release pod %s as owner of secret %s/%s: %w", pod.Name, namespace, name, err)
		}
	}
	if len(live.OwnerReferences) > 0 {
		return false, nil
	}
	pre := metav1.Preconditions{UID: &live.UID, ResourceVersion: &live.ResourceVersion}
	err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &pre})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("failed to delete secret %s/%s after its last pod %s: %w", namespace, name, pod.Name, err)
	}
	return true, nil
}
