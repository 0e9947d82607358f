package driver

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

func TestTrimClass(t *testing.T) {
	spec := secretsstorev1.SecretProviderClassSpec{
		Provider:   "aws",
		Parameters: map[string]string{"objects": "- objectName: a\n  objectType: secretsmanager\n"},
		SecretObjects: []*secretsstorev1.SecretObject{{
			SecretName: "s", Type: "Opaque",
			Labels: map[string]string{"l": "v"}, Annotations: map[string]string{lastApplied: "kept: it is the Secret's"},
			Data: []*secretsstorev1.SecretObjectData{{ObjectName: "a", Key: "k"}},
		}},
	}
	in := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "c", UID: "u1", ResourceVersion: "7", Generation: 3,
			Labels:        map[string]string{"app": "db"},
			Annotations:   map[string]string{lastApplied: `{"big":"copy"}`, "team": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		},
		Spec: spec,
	}
	annotations := in.Annotations
	out, err := trimClass(in)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*secretsstorev1.SecretProviderClass)
	want := secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "c", UID: "u1", ResourceVersion: "7", Generation: 3,
			Labels:      map[string]string{"app": "db"},
			Annotations: map[string]string{"team": "x"},
		},
		Spec: spec,
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("trimClass =\n%+v\nwant\n%+v", *got, want)
	}
	if _, ok := annotations[lastApplied]; !ok {
		t.Error("trimClass changed the annotations map it was given, which the informer may share")
	}

	other := &metav1.PartialObjectMetadata{}
	if o, err := trimClass(other); err != nil || o != other {
		t.Errorf("trimClass of another type = %v, %v; want it unchanged", o, err)
	}
}
