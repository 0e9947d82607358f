package sync

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// appliedBy is a managedFields entry as the API server records an apply.
func appliedBy(manager, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationApply,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

func TestInStep(t *testing.T) {
	const owned = `{"f:data":{"f:password":{},"f:username":{}},"f:metadata":{"f:labels":{"f:cnpg.io/reload":{}},"f:annotations":{"f:team":{}}},"f:type":{}}`
	live := func() *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Labels:        map[string]string{"cnpg.io/reload": "true", "added-by-someone": "x"},
				Annotations:   map[string]string{"team": "db"},
				ManagedFields: []metav1.ManagedFieldsEntry{appliedBy(FieldManager, owned), appliedBy("kubectl", `{"f:metadata":{"f:labels":{"f:added-by-someone":{}}}}`)},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"username": []byte("postgres"), "password": []byte("pw")},
		}
	}
	want := func() *secretContent {
		return &secretContent{Type: "Opaque",
			Labels: map[string]string{"cnpg.io/reload": "true"}, Annotations: map[string]string{"team": "db"},
			Data: map[string][]byte{"username": []byte("postgres"), "password": []byte("pw")}}
	}
	tests := []struct {
		name   string
		change func(*secretContent)
		want   bool
	}{
		{name: "same", change: func(*secretContent) {}, want: true},
		{name: "value changed", change: func(c *secretContent) { c.Data["password"] = []byte("pw2") }, want: false},
		{name: "trailing newline is a change", change: func(c *secretContent) { c.Data["password"] = []byte("pw\n") }, want: false},
		{name: "key added", change: func(c *secretContent) { c.Data["uri"] = []byte("x") }, want: false},
		{name: "key dropped from spec", change: func(c *secretContent) { delete(c.Data, "username") }, want: false},
		{name: "label added to spec", change: func(c *secretContent) { c.Labels["app"] = "pg" }, want: false},
		{name: "label value changed", change: func(c *secretContent) { c.Labels["cnpg.io/reload"] = "yes" }, want: false},
		{name: "label dropped from spec", change: func(c *secretContent) { delete(c.Labels, "cnpg.io/reload") }, want: false},
		{name: "annotation dropped from spec", change: func(c *secretContent) { c.Annotations = nil }, want: false},
		{name: "owner missing", change: func(c *secretContent) { c.Owner = &metav1.OwnerReference{UID: "u"} }, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := want()
			tt.change(c)
			if got := inStep(live(), c); got != tt.want {
				t.Fatalf("inStep = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestManagedBy(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		appliedBy("kubectl-client-side-apply", `{}`),
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate},
	}}}
	if managedBy(s, FieldManager) {
		t.Fatal("an Update by a manager of the same name is not an apply by secretmount")
	}
	s.ManagedFields = append(s.ManagedFields, appliedBy(FieldManager, `{"f:data":{"f:a":{}}}`))
	if !managedBy(s, FieldManager) {
		t.Fatal("secretmount's apply not recognised")
	}
	if got := ownedFields(s, FieldManager).data; len(got) != 1 || got[0] != "a" {
		t.Fatalf("owned data keys %v", got)
	}
}
