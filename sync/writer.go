package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// FieldManager is the server-side apply field manager of every Secret write.
const FieldManager = "secretmount"

// AdoptAnnotation on an existing Secret that secretmount did not create allows secretmount
// to take it over. Without it such a Secret is never written.
const AdoptAnnotation = "secretmount.io/adopt"

// errNotOwned: the Secret exists, secretmount did not create it and may not take it over.
var errNotOwned = errors.New("exists and was not created by secretmount")

// writeResult is what a write did.
type writeResult string

const (
	resultCreated   writeResult = "created"
	resultUpdated   writeResult = "updated"
	resultUnchanged writeResult = "unchanged"
)

// Writer writes Secrets by server-side apply, and only when they differ from what they
// should be.
type Writer struct {
	client kubernetes.Interface
}

// NewWriter returns a Writer using client.
func NewWriter(client kubernetes.Interface) *Writer { return &Writer{client: client} }

// apply makes the Secret match c: type, labels, annotations and data. It reads the live
// Secret first (reads are cheap; writes are what the API server and watchers pay for) and
// writes nothing when it already matches.
func (w *Writer) apply(ctx context.Context, c *secretContent) (writeResult, error) {
	ctx = quiet(ctx)
	secrets := w.client.CoreV1().Secrets(c.Namespace)
	live, err := secrets.Get(ctx, c.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if err := w.write(ctx, c); err != nil {
			return "", err
		}
		return resultCreated, nil
	case err != nil:
		return "", fmt.Errorf("failed to read secret %s: %w", c.key(), err)
	}
	if !managedBy(live, FieldManager) && live.Annotations[AdoptAnnotation] != "true" {
		return "", fmt.Errorf("secret %s %w (annotate it %s=true to let secretmount take it over)", c.key(), errNotOwned, AdoptAnnotation)
	}
	if string(live.Type) != c.Type {
		// The type of a Secret is immutable: replace the Secret, guarded so that a
		// concurrent change makes this pass fail and retry rather than lose it.
		pre := metav1.Preconditions{UID: &live.UID, ResourceVersion: &live.ResourceVersion}
		if err := secrets.Delete(ctx, c.Name, metav1.DeleteOptions{Preconditions: &pre}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("failed to replace secret %s to change its type: %w", c.key(), err)
		}
		if err := w.write(ctx, c); err != nil {
			return "", err
		}
		return resultUpdated, nil
	}
	if inStep(live, c) {
		return resultUnchanged, nil
	}
	if err := w.write(ctx, c); err != nil {
		return "", err
	}
	return resultUpdated, nil
}

func (w *Writer) write(ctx context.Context, c *secretContent) error {
	ctx = quiet(ctx)
	ac := corev1ac.Secret(c.Name, c.Namespace).
		WithType(corev1.SecretType(c.Type)).
		WithLabels(c.Labels).
		WithAnnotations(c.Annotations).
		WithData(c.Data)
	if o := c.Owner; o != nil {
		ac.WithOwnerReferences(metav1ac.OwnerReference().WithAPIVersion(o.APIVersion).WithKind(o.Kind).
			WithName(o.Name).WithUID(o.UID).WithController(o.Controller != nil && *o.Controller))
	}
	_, err := w.client.CoreV1().Secrets(c.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("failed to apply secret %s: %w", c.key(), err)
	}
	return nil
}

// inStep reports whether live already is c: same data bytes, labels and annotations, and
// nothing left over that secretmount set earlier and the spec no longer asks for.
func inStep(live *corev1.Secret, c *secretContent) bool {
	for k, v := range c.Data {
		lv, ok := live.Data[k]
		if !ok || !bytes.Equal(lv, v) {
			return false
		}
	}
	if !subset(c.Labels, live.Labels) || !subset(c.Annotations, live.Annotations) {
		return false
	}
	owned := ownedFields(live, FieldManager)
	for _, k := range owned.data {
		if _, ok := c.Data[k]; !ok {
			return false
		}
	}
	for _, k := range owned.labels {
		if _, ok := c.Labels[k]; !ok {
			return false
		}
	}
	for _, k := range owned.annotations {
		if _, ok := c.Annotations[k]; !ok {
			return false
		}
	}
	if c.Owner != nil && !hasOwner(live, c.Owner.UID) {
		return false
	}
	return true
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func hasOwner(s *corev1.Secret, uid types.UID) bool {
	for _, o := range s.OwnerReferences {
		if o.UID == uid {
			return true
		}
	}
	return false
}
