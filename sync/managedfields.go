package sync

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// managedBy reports whether manager has applied fields of s: that is how secretmount
// recognises the Secrets it created, without a marker a user could copy by accident.
func managedBy(s *corev1.Secret, manager string) bool {
	for _, e := range s.ManagedFields {
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// fieldKeys are the label, annotation and data keys one manager owns.
type fieldKeys struct {
	labels, annotations, data []string
}

// ownedFields reads the keys manager owns from the managedFields of s. Keys it once set
// and no longer applies are what a write must remove.
func ownedFields(s *corev1.Secret, manager string) fieldKeys {
	var out fieldKeys
	for _, e := range s.ManagedFields {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.FieldsV1 == nil {
			continue
		}
		var set map[string]json.RawMessage
		if json.Unmarshal(e.FieldsV1.Raw, &set) != nil {
			continue
		}
		out.data = append(out.data, fieldNames(set["f:data"])...)
		var meta map[string]json.RawMessage
		if raw, ok := set["f:metadata"]; ok && json.Unmarshal(raw, &meta) == nil {
			out.labels = append(out.labels, fieldNames(meta["f:labels"])...)
			out.annotations = append(out.annotations, fieldNames(meta["f:annotations"])...)
		}
	}
	return out
}

// fieldNames lists the "f:<name>" members of a fields set.
func fieldNames(raw json.RawMessage) []string {
	if raw == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var names []string
	for k := range m {
		if name, ok := strings.CutPrefix(k, "f:"); ok {
			names = append(names, name)
		}
	}
	return names
}
