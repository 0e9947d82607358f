package providerclass

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

// secretObjects checks spec.secretObjects: well-formed Secret names, keys, labels
// and annotations, and (for the dialects planned here) data that refers to a file
// the plan writes. An external provider's files are known only after its fetch, so
// there the reference is checked by the sync, not here.
func (b *builder) secretObjects(in []*secretsstorev1.SecretObject) error {
	if len(in) == 0 {
		return nil
	}
	names := map[string]string{}
	out := make([]SecretObject, 0, len(in))
	for i, so := range in {
		field := fmt.Sprintf("secretObjects[%d]", i)
		if so == nil {
			return errorf(field, "must not be null")
		}
		if so.SecretName == "" {
			return errorf(field+".secretName", "is required")
		}
		if errs := validation.IsDNS1123Subdomain(so.SecretName); len(errs) > 0 {
			return errorf(field+".secretName", "is not a valid Secret name: %s", strings.Join(errs, "; "))
		}
		if other, dup := names[so.SecretName]; dup {
			return errorf(field+".secretName", "Secret %q is already synced by %s", so.SecretName, other)
		}
		names[so.SecretName] = field
		typ := so.Type
		if typ == "" {
			typ = "Opaque"
		}
		if err := checkMeta(field, so.Labels, so.Annotations); err != nil {
			return err
		}
		data, err := b.secretObjectData(field, so.Data)
		if err != nil {
			return err
		}
		out = append(out, SecretObject{
			Field:       field,
			SecretName:  so.SecretName,
			Type:        typ,
			Labels:      maps.Clone(so.Labels),
			Annotations: maps.Clone(so.Annotations),
			Data:        data,
		})
	}
	b.plan.SecretObjects = out
	return nil
}

func (b *builder) secretObjectData(field string, in []*secretsstorev1.SecretObjectData) ([]SecretObjectData, error) {
	if len(in) == 0 {
		return nil, errorf(field+".data", "is required: list at least one objectName and key")
	}
	keys := map[string]string{}
	out := make([]SecretObjectData, 0, len(in))
	for j, d := range in {
		df := fmt.Sprintf("%s.data[%d]", field, j)
		if d == nil {
			return nil, errorf(df, "must not be null")
		}
		if d.ObjectName == "" {
			return nil, errorf(df+".objectName", "is required")
		}
		if b.plan.Dialect != DialectExternal {
			if _, ok := b.files[d.ObjectName]; !ok {
				return nil, errorf(df+".objectName", "%q is not a file of this class (files: %s)", d.ObjectName, b.fileList())
			}
		}
		if d.Key == "" {
			return nil, errorf(df+".key", "is required")
		}
		if errs := validation.IsConfigMapKey(d.Key); len(errs) > 0 {
			return nil, errorf(df+".key", "is not a valid Secret key: %s", strings.Join(errs, "; "))
		}
		if other, dup := keys[d.Key]; dup {
			return nil, errorf(df+".key", "key %q is already set by %s", d.Key, other)
		}
		keys[d.Key] = df
		out = append(out, SecretObjectData{ObjectName: d.ObjectName, Key: d.Key})
	}
	return out, nil
}

func checkMeta(field string, labels, annotations map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return errorf(field+".labels", "key %q is not a valid label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			return errorf(field+".labels."+k, "is not a valid label value: %s", strings.Join(errs, "; "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		if errs := validation.IsQualifiedName(strings.ToLower(k)); len(errs) > 0 {
			return errorf(field+".annotations", "key %q is not a valid annotation key: %s", k, strings.Join(errs, "; "))
		}
	}
	return nil
}

// fileList names the planned files for an error message, capped so the message
// stays readable.
func (b *builder) fileList() string {
	names := slices.Sorted(maps.Keys(b.files))
	const max = 10
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
