package sync

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

// specError is a SecretSync the controller refuses as written: the condition reason, the
// field and why. It never carries a secret value.
type specError struct {
	Reason string // a v1alpha1 condition reason
	Field  string // e.g. "spec.secretObject.data[1].targetKey"
	Detail string
}

func (e *specError) Error() string { return e.Field + ": " + e.Detail }

// validateSecretSync checks what can be checked before fetching anything.
func validateSecretSync(ss *v1alpha1.SecretSync) *specError {
	invalid := func(field, format string, args ...any) *specError {
		return &specError{Reason: v1alpha1.ReasonUserInputValidationFailed, Field: field, Detail: fmt.Sprintf(format, args...)}
	}
	spec := ss.Spec
	if spec.SecretProviderClassName == "" {
		return invalid("spec.secretProviderClassName", "required")
	}
	if e := validateServiceAccountName(spec.ServiceAccountName, ss.Namespace); e != nil {
		return e
	}
	obj := spec.SecretObject
	if strings.ContainsAny(obj.Type, " \t\r\n") {
		return invalid("spec.secretObject.type", "must not contain white space")
	}
	if len(obj.Data) == 0 {
		return invalid("spec.secretObject.data", "at least one entry is required")
	}
	seen := map[string]int{}
	for i, d := range obj.Data {
		field := fmt.Sprintf("spec.secretObject.data[%d]", i)
		switch {
		case d.SourcePath == "" && d.Template == "":
			return invalid(field, "one of sourcePath and template is required")
		case d.SourcePath != "" && d.Template != "":
			return invalid(field, "sourcePath and template are mutually exclusive")
		}
		if errs := validation.IsConfigMapKey(d.TargetKey); len(errs) > 0 {
			return invalid(field+".targetKey", "%q is not a valid Secret key: %s", d.TargetKey, strings.Join(errs, "; "))
		}
		if j, dup := seen[d.TargetKey]; dup {
			return invalid(field+".targetKey", "%q is also the targetKey of spec.secretObject.data[%d]", d.TargetKey, j)
		}
		seen[d.TargetKey] = i
		if d.Template != "" {
			if _, err := parseTemplate(field+".template", d.Template); err != nil {
				return invalid(field+".template", "does not parse: %v", err)
			}
		}
	}
	for _, k := range sortedKeys(obj.Labels) {
		field := fmt.Sprintf("spec.secretObject.labels[%q]", k)
		if strings.HasPrefix(k, v1alpha1.ReservedPrefix) {
			return &specError{Reason: v1alpha1.ReasonInvalidClusterSecretLabelError, Field: field, Detail: "the prefix " + v1alpha1.ReservedPrefix + " is reserved for the controller"}
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return invalid(field, "not a valid label key: %s", strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(obj.Labels[k]); len(errs) > 0 {
			return invalid(field, "not a valid label value: %s", strings.Join(errs, "; "))
		}
	}
	for _, k := range sortedKeys(obj.Annotations) {
		field := fmt.Sprintf("spec.secretObject.annotations[%q]", k)
		if strings.HasPrefix(k, v1alpha1.ReservedPrefix) {
			return &specError{Reason: v1alpha1.ReasonInvalidClusterSecretAnnotationError, Field: field, Detail: "the prefix " + v1alpha1.ReservedPrefix + " is reserved for the controller"}
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return invalid(field, "not a valid annotation key: %s", strings.Join(errs, "; "))
		}
	}
	return nil
}

// validateServiceAccountName refuses names that point at a ServiceAccount of another
// namespace: a SecretSync acts only as a ServiceAccount of its own namespace.
func validateServiceAccountName(name, namespace string) *specError {
	const field = "spec.serviceAccountName"
	refuse := func(other string) *specError {
		return &specError{Reason: v1alpha1.ReasonUserInputValidationFailed, Field: field,
			Detail: fmt.Sprintf("%q names a ServiceAccount of namespace %q; a SecretSync may only use a ServiceAccount of its own namespace %q", name, other, namespace)}
	}
	if name == "" {
		return &specError{Reason: v1alpha1.ReasonUserInputValidationFailed, Field: field, Detail: "required"}
	}
	if rest, ok := strings.CutPrefix(name, "system:serviceaccount:"); ok {
		ns, _, _ := strings.Cut(rest, ":")
		return refuse(ns)
	}
	if ns, _, ok := strings.Cut(name, "/"); ok {
		return refuse(ns)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return &specError{Reason: v1alpha1.ReasonUserInputValidationFailed, Field: field, Detail: fmt.Sprintf("%q is not a ServiceAccount name: %s", name, strings.Join(errs, "; "))}
	}
	return nil
}
