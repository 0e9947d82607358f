package sync

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

// FuzzValidateSecretSync decodes a SecretSync spec from arbitrary JSON (seeds: the
// bad-input corpus's SecretSync cases and the guide's) and validates it as the
// controller does. A refusal names a spec field with a reason a condition can carry;
// an accepted spec holds every promise the controller relies on afterwards; validation
// is deterministic and never changes the object.
func FuzzValidateSecretSync(f *testing.F) {
	f.Add([]byte(`{"secretProviderClassName":"c","serviceAccountName":"sa","secretObject":{"data":[{"sourcePath":"db","targetKey":"k"}]}}`), "ns")
	f.Fuzz(func(t *testing.T, spec []byte, namespace string) {
		ss := &v1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "s"}}
		if json.Unmarshal(spec, &ss.Spec) != nil {
			return
		}
		before := ss.DeepCopy()
		e := validateSecretSync(ss)
		if !reflect.DeepEqual(before, ss) {
			t.Fatalf("validation changed the SecretSync")
		}
		if again := validateSecretSync(ss); !reflect.DeepEqual(e, again) {
			t.Fatalf("validating twice disagrees: %v / %v", e, again)
		}
		if e != nil {
			checkSpecError(t, e)
			return
		}
		checkAccepted(t, ss)
	})
}

func checkSpecError(t *testing.T, e *specError) {
	t.Helper()
	if !strings.HasPrefix(e.Field, "spec.") || e.Detail == "" || !strings.Contains(e.Error(), e.Field) {
		t.Fatalf("refusal without a spec field or detail: %#v", e)
	}
	labels := strings.HasPrefix(e.Field, "spec.secretObject.labels[")
	annotations := strings.HasPrefix(e.Field, "spec.secretObject.annotations[")
	switch e.Reason {
	case v1alpha1.ReasonUserInputValidationFailed:
	case v1alpha1.ReasonInvalidClusterSecretLabelError:
		if !labels {
			t.Fatalf("label reason for field %s", e.Field)
		}
	case v1alpha1.ReasonInvalidClusterSecretAnnotationError:
		if !annotations {
			t.Fatalf("annotation reason for field %s", e.Field)
		}
	default:
		t.Fatalf("refusal with reason %q", e.Reason)
	}
}

// checkAccepted restates what an accepted spec guarantees to the fetch and write steps.
func checkAccepted(t *testing.T, ss *v1alpha1.SecretSync) {
	t.Helper()
	spec := ss.Spec
	sa := spec.ServiceAccountName
	switch {
	case spec.SecretProviderClassName == "":
		t.Fatalf("accepted without secretProviderClassName")
	case sa == "" || strings.Contains(sa, "/") || strings.Contains(sa, ":") || len(validation.IsDNS1123Subdomain(sa)) > 0:
		t.Fatalf("accepted serviceAccountName %q, which is not a ServiceAccount of the namespace", sa)
	case strings.ContainsAny(spec.SecretObject.Type, " \t\r\n"):
		t.Fatalf("accepted a type with white space")
	case len(spec.SecretObject.Data) == 0:
		t.Fatalf("accepted without data")
	}
	keys := map[string]bool{}
	for i, d := range spec.SecretObject.Data {
		if (d.SourcePath == "") == (d.Template == "") {
			t.Fatalf("data[%d] accepted without exactly one of sourcePath and template", i)
		}
		if len(validation.IsConfigMapKey(d.TargetKey)) > 0 || keys[d.TargetKey] {
			t.Fatalf("data[%d] accepted targetKey %q (invalid or repeated)", i, d.TargetKey)
		}
		keys[d.TargetKey] = true
		if d.Template != "" {
			if _, err := parseTemplate("t", d.Template); err != nil {
				t.Fatalf("data[%d] accepted a template that does not parse", i)
			}
		}
	}
	for k, v := range spec.SecretObject.Labels {
		if strings.HasPrefix(k, v1alpha1.ReservedPrefix) || len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			t.Fatalf("accepted label %q=%q", k, v)
		}
	}
	for k := range spec.SecretObject.Annotations {
		if strings.HasPrefix(k, v1alpha1.ReservedPrefix) || len(validation.IsQualifiedName(k)) > 0 {
			t.Fatalf("accepted annotation key %q", k)
		}
	}
}
