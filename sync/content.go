package sync

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/providerclass"
)

// secretContent is one Secret as secretmount wants it: what the Writer applies.
type secretContent struct {
	Namespace   string
	Name        string
	Type        string
	Labels      map[string]string
	Annotations map[string]string
	Data        map[string][]byte
	// Owner, when set, is the controller reference (the SecretSync) applied with the data.
	Owner *metav1.OwnerReference
}

func (c *secretContent) key() string { return c.Namespace + "/" + c.Name }

// fileMap indexes rendered files by path.
func fileMap(files []providerclass.File) map[string][]byte {
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		m[f.Path] = f.Bytes
	}
	return m
}

// secretSyncContent builds the Secret of a validated SecretSync from the rendered files.
// A missing file or a failing template fails the whole Secret: nothing partial is written.
func secretSyncContent(ss *v1alpha1.SecretSync, files map[string][]byte) (*secretContent, *specError) {
	obj := ss.Spec.SecretObject
	labels := maps.Clone(obj.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.SecretSyncLabel] = ss.Name
	c := &secretContent{
		Namespace:   ss.Namespace,
		Name:        ss.Name,
		Type:        secretType(obj.Type),
		Labels:      labels,
		Annotations: maps.Clone(obj.Annotations),
		Data:        make(map[string][]byte, len(obj.Data)),
		Owner: &metav1.OwnerReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "SecretSync",
			Name: ss.Name, UID: ss.UID, Controller: ptrTo(true),
		},
	}
	var texts map[string]string // file contents as strings, only built when a template needs them
	for i, d := range obj.Data {
		field := fmt.Sprintf("spec.secretObject.data[%d]", i)
		if d.Template == "" {
			b, ok := files[d.SourcePath]
			if !ok {
				return nil, &specError{Reason: v1alpha1.ReasonUserInputValidationFailed, Field: field + ".sourcePath",
					Detail: fmt.Sprintf("%q is not a file of SecretProviderClass %s (files: %s)", d.SourcePath, ss.Spec.SecretProviderClassName, strings.Join(sortedKeys(files), ", "))}
			}
			c.Data[d.TargetKey] = slices.Clone(b)
			continue
		}
		if texts == nil {
			texts = make(map[string]string, len(files))
			for p, b := range files {
				texts[p] = string(b)
			}
		}
		out, err := executeTemplate(field+".template", d.Template, texts)
		if err != nil {
			return nil, &specError{Reason: v1alpha1.ReasonUserInputValidationFailed, Field: field + ".template", Detail: err.Error()}
		}
		c.Data[d.TargetKey] = out
	}
	return c, nil
}

// mountContent builds the Secrets of a SecretProviderClass's secretObjects from a
// volume's rendered files, in the pod's namespace. The planner has already checked that
// every objectName is a planned file; a file still missing fails that Secret only.
func mountContent(namespace string, so providerclass.SecretObject, files map[string][]byte) (*secretContent, error) {
	labels := maps.Clone(so.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[mountManagedLabel] = "true"
	c := &secretContent{
		Namespace:   namespace,
		Name:        so.SecretName,
		Type:        secretType(so.Type),
		Labels:      labels,
		Annotations: maps.Clone(so.Annotations),
		Data:        make(map[string][]byte, len(so.Data)),
	}
	for i, d := range so.Data {
		b, ok := files[d.ObjectName]
		if !ok {
			return nil, fmt.Errorf("%s.data[%d].objectName: %q is not a file of the volume", so.Field, i, d.ObjectName)
		}
		c.Data[d.Key] = slices.Clone(b)
	}
	return c, nil
}

// mountManagedLabel marks Secrets made by mount-driven sync, as the upstream driver does.
const mountManagedLabel = "secrets-store.csi.k8s.io/managed"

func secretType(t string) string {
	if t == "" {
		return "Opaque"
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func ptrTo[T any](v T) *T { return &v }
