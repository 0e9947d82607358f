package sync

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

func secretSync(mutate func(*v1alpha1.SecretSync)) *v1alpha1.SecretSync {
	ss := &v1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: "cnpg-system", Name: "postgres-credentials", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.SecretSyncSpec{
			SecretProviderClassName: "postgres-aws-secrets",
			ServiceAccountName:      "cnpg-sa",
			SecretObject: v1alpha1.SecretObject{
				Type: "kubernetes.io/basic-auth",
				Data: []v1alpha1.SecretObjectData{
					{SourcePath: "db-username", TargetKey: "username"},
					{SourcePath: "db-password", TargetKey: "password"},
				},
				Labels: map[string]string{"cnpg.io/reload": "true"},
			},
		},
	}
	if mutate != nil {
		mutate(ss)
	}
	return ss
}

func TestValidateSecretSync(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*v1alpha1.SecretSync)
		wantReason string
		wantField  string
		wantDetail string
	}{
		{name: "valid"},
		{name: "service account of another namespace (full name)",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.ServiceAccountName = "system:serviceaccount:kube-system:admin" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.serviceAccountName", wantDetail: `namespace "kube-system"`},
		{name: "service account of another namespace (slash)",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.ServiceAccountName = "other/cnpg-sa" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.serviceAccountName", wantDetail: `own namespace "cnpg-system"`},
		{name: "service account not a name",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.ServiceAccountName = "Bad_Name" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.serviceAccountName"},
		{name: "no data",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Data = nil },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.data"},
		{name: "neither source nor template",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Data[1].SourcePath = "" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.data[1]", wantDetail: "one of sourcePath and template"},
		{name: "both source and template",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Data[0].Template = "x" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.data[0]", wantDetail: "mutually exclusive"},
		{name: "duplicate target key",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Data[1].TargetKey = "username" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.data[1].targetKey", wantDetail: "data[0]"},
		{name: "invalid target key",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Data[0].TargetKey = "a b" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.data[0].targetKey"},
		{name: "template does not parse",
			mutate: func(ss *v1alpha1.SecretSync) {
				ss.Spec.SecretObject.Data[1] = v1alpha1.SecretObjectData{TargetKey: "uri", Template: "{{ file "}
			},
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.data[1].template"},
		{name: "reserved label",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Labels[v1alpha1.SecretSyncLabel] = "x" },
			wantReason: v1alpha1.ReasonInvalidClusterSecretLabelError, wantField: `spec.secretObject.labels["secrets-store.sync.x-k8s.io/secretsync"]`},
		{name: "reserved annotation",
			mutate: func(ss *v1alpha1.SecretSync) {
				ss.Spec.SecretObject.Annotations = map[string]string{"secrets-store.sync.x-k8s.io/x": "y"}
			},
			wantReason: v1alpha1.ReasonInvalidClusterSecretAnnotationError, wantField: `spec.secretObject.annotations["secrets-store.sync.x-k8s.io/x"]`},
		{name: "bad label value",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Labels["app"] = "not valid!" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: `spec.secretObject.labels["app"]`},
		{name: "white space in type",
			mutate:     func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Type = "a b" },
			wantReason: v1alpha1.ReasonUserInputValidationFailed, wantField: "spec.secretObject.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateSecretSync(secretSync(tt.mutate))
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %s on %s", tt.wantReason, tt.wantField)
			}
			if err.Reason != tt.wantReason || err.Field != tt.wantField {
				t.Fatalf("got %s on %s (%v), want %s on %s", err.Reason, err.Field, err, tt.wantReason, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantDetail) {
				t.Fatalf("error %q does not say %q", err, tt.wantDetail)
			}
		})
	}
}
