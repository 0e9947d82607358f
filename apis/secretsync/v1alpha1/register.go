package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of SecretSync.
var GroupVersion = schema.GroupVersion{Group: "secret-sync.x-k8s.io", Version: "v1alpha1"}

// SchemeBuilder registers the SecretSync types with a scheme.
var SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds SecretSync and SecretSyncList to a scheme.
var AddToScheme = SchemeBuilder.AddToScheme

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &SecretSync{}, &SecretSyncList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
