package providerclass

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

// class builds a SecretProviderClass in namespace "ns" named "spc".
func class(provider string, params map[string]string, objs ...*secretsstorev1.SecretObject) *secretsstorev1.SecretProviderClass {
	return &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "spc"},
		Spec: secretsstorev1.SecretProviderClassSpec{
			Provider:      secretsstorev1.Provider(provider),
			Parameters:    params,
			SecretObjects: objs,
		},
	}
}

func aws(objects string, extra ...string) *secretsstorev1.SecretProviderClass {
	return class("aws", params(objects, extra...))
}

// vault builds a Vault class with roleName "r" unless extra sets it.
func vault(objects string, extra ...string) *secretsstorev1.SecretProviderClass {
	return class("vault", params(objects, append([]string{"roleName", "r"}, extra...)...))
}

func params(objects string, extra ...string) map[string]string {
	p := map[string]string{}
	if objects != "" {
		p["objects"] = objects
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "<unset>" {
			delete(p, extra[i])
			continue
		}
		p[extra[i]] = extra[i+1]
	}
	return p
}

func syncTo(name string, data ...string) *secretsstorev1.SecretObject {
	so := &secretsstorev1.SecretObject{SecretName: name}
	for i := 0; i+1 < len(data); i += 2 {
		so.Data = append(so.Data, &secretsstorev1.SecretObjectData{ObjectName: data[i], Key: data[i+1]})
	}
	return so
}

// requireFieldError asserts that err is an *Error for ns/spc at field whose reason
// contains reason.
func requireFieldError(t *testing.T, err error, field, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one at %s", field)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %q is not an *Error", err, err)
	}
	if pe.Class.Namespace != "ns" || pe.Class.Name != "spc" {
		t.Errorf("error names class %s, want ns/spc", pe.Class)
	}
	if pe.Field != field {
		t.Fatalf("field = %q, want %q (error: %v)", pe.Field, field, err)
	}
	if !strings.Contains(pe.Reason, reason) {
		t.Fatalf("reason = %q, want it to contain %q", pe.Reason, reason)
	}
	if !strings.Contains(err.Error(), "ns/spc") || !strings.Contains(err.Error(), field) {
		t.Fatalf("message %q does not name the class and field", err)
	}
}
