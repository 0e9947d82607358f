// Package v1alpha1 holds the SecretSync API (secret-sync.x-k8s.io/v1alpha1) as the
// secrets-store-sync-controller defines it, so that SecretSync objects written for that
// controller work unchanged, plus one additive extension: templated keys
// (SecretObjectData.Template).
//
// It owns only the Go types, their registration and the generated deep copies; the
// CustomResourceDefinition in charts/secretmount/crds is generated from these types by
// hack/generate-secretsync.sh. It must not hold behaviour: the sync package implements it.
//
// +kubebuilder:object:generate=true
// +groupName=secret-sync.x-k8s.io
package v1alpha1
