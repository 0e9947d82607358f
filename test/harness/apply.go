package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

const (
	fieldManager = "secretmount-harness"
	crdTimeout   = time.Minute
)

var crdKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// ApplyYAML server-side applies every object in the given YAML files (multi-document
// files are fine) and returns them as applied. Namespaced objects without a namespace go
// to "default".
func (a *APIServer) ApplyYAML(t testing.TB, files ...string) []*unstructured.Unstructured {
	t.Helper()
	var applied []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("failed to read manifest: %v", err)
		}
		objs, err := a.apply(data)
		if err != nil {
			t.Fatalf("failed to apply %s: %v", f, err)
		}
		applied = append(applied, objs...)
	}
	return applied
}

// ApplyManifest is ApplyYAML for YAML held in the test.
func (a *APIServer) ApplyManifest(t testing.TB, manifest string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := a.apply([]byte(manifest))
	if err != nil {
		t.Fatalf("failed to apply manifest: %v", err)
	}
	return objs
}

// ApplyCRDs applies every *.yaml and *.yml file in dir (charts/secretmount/crds, say) and
// waits until each CustomResourceDefinition among them is Established, so the test can
// create custom resources right away.
func (a *APIServer) ApplyCRDs(t testing.TB, dir string) {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatalf("failed to list %s: %v", dir, err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no CRD manifests (*.yaml, *.yml) in %s", dir)
	}
	sort.Strings(files)
	for _, obj := range a.ApplyYAML(t, files...) {
		if obj.GroupVersionKind().GroupKind() != crdKind {
			continue
		}
		if err := a.waitEstablished(obj.GetName()); err != nil {
			t.Fatal(err)
		}
	}
	a.restMapper().Reset()
}

func (a *APIServer) apply(data []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var applied []*unstructured.Unstructured
	for i := 0; ; i++ {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return applied, nil
			}
			return applied, fmt.Errorf("document %d: %w", i, err)
		}
		if len(raw) == 0 {
			continue // an empty document between separators
		}
		obj := &unstructured.Unstructured{Object: raw}
		out, err := a.applyObject(obj)
		if err != nil {
			return applied, fmt.Errorf("document %d (%s %s): %w", i, obj.GetKind(), obj.GetName(), err)
		}
		applied = append(applied, out)
	}
}

func (a *APIServer) applyObject(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" || obj.GetName() == "" {
		return nil, fmt.Errorf("apiVersion, kind and metadata.name are required")
	}
	mapping, err := a.restMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A CRD applied a moment ago is not in the cached discovery yet.
		a.restMapper().Reset()
		mapping, err = a.restMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to find the resource for %s: %w", gvk, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		return a.Dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, opts)
	}
	return a.Dynamic.Resource(mapping.Resource).Apply(ctx, obj.GetName(), obj, opts)
}

func (a *APIServer) restMapper() meta.ResettableRESTMapper { return a.mapper }

// newRESTMapper maps kinds to resources from the API server's discovery, cached until
// Reset.
func newRESTMapper(config *rest.Config) (meta.ResettableRESTMapper, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("failed to build a discovery client: %w", err)
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), nil
}

func (a *APIServer) waitEstablished(name string) error {
	crds := a.Dynamic.Resource(schema.GroupVersionResource{Group: crdKind.Group, Version: "v1", Resource: "customresourcedefinitions"})
	return waitReady("CustomResourceDefinition "+name+" Established", crdTimeout, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		crd, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conditions {
			cond, _ := c.(map[string]any)
			if cond["type"] == "Established" && cond["status"] == "True" {
				return nil
			}
		}
		return fmt.Errorf("not Established yet")
	})
}
