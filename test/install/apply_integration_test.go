//go:build integration

package install

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/secretmount/secretmount/test/harness"
)

const fieldManager = "secretmount-install-test"

// applier server-side-applies rendered objects, resolving kinds through discovery.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := harness.SharedAPIServer(t)
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(a.Client.Discovery()))}
}

func (ap *applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := ap.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		ap.mapper.Reset()
		m, err = ap.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("no resource for %s: %w", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %s is namespaced but rendered without a namespace", gvk.Kind, obj.GetName())
		}
		return ap.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return ap.dyn.Resource(m.Resource), nil
}

// apply applies one object; dryRun asks the server to run admission and validation and
// store nothing.
func (ap *applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	r, err := ap.resource(obj)
	if err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return r.Apply(ctx, obj.GetName(), obj, opts)
}

// installChart renders the chart into a new namespace and applies every object to the
// shared API server: first all of them as a server-side dry run, then for real, then
// reads each back.
func installChart(t *testing.T, release string, values map[string]any) (namespace string, objs []*unstructured.Unstructured) {
	t.Helper()
	a := harness.SharedAPIServer(t)
	namespace = a.NewNamespace(t)
	objs = render(t, Options{ReleaseName: release, Namespace: namespace, Values: values})
	ap := newApplier(t, a.RestConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, dry := range []bool{true, false} {
		for _, o := range objs {
			if _, err := ap.apply(ctx, o.DeepCopy(), dry); err != nil {
				t.Fatalf("dry run %v: the API server refused %s %s/%s: %v", dry, o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	waitServed(ctx, t, a, objs)
	for _, o := range objs {
		r, err := ap.resource(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Get(ctx, o.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s %s not stored: %v", o.GetKind(), o.GetName(), err)
		}
		if got.GetLabels()["app.kubernetes.io/instance"] != release && o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s %s stored without the release label: %v", o.GetKind(), o.GetName(), got.GetLabels())
		}
	}
	return namespace, objs
}

// TestApplyChart proves a real kube-apiserver (v1.34) accepts every object the chart
// renders, for the default values and for the values a user of the upstream chart
// passes: schema validation of the built-in kinds (DaemonSet propagation and privilege
// rules, CSIDriver fields, RBAC rules, PDB) happens there, not in the chart's own tests.
func TestApplyChart(t *testing.T) {
	tests := []struct {
		name    string
		release string
		values  func(t *testing.T) map[string]any
	}{
		{"defaults", "secretmount", func(*testing.T) map[string]any { return nil }},
		{"upstream values", "csi-secrets-store", upstreamValues},
		{"one namespace, no sync secrets", "scoped", func(*testing.T) map[string]any {
			return map[string]any{"syncController": map[string]any{"watchNamespace": "default", "replicas": 1, "leaderElection": false}, "enableSecretRotation": true}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, objs := installChart(t, tc.release, tc.values(t))
			if len(objs) < 10 {
				t.Errorf("only %d objects rendered", len(objs))
			}
		})
	}
}

// waitServed waits (bounded) until discovery serves the resources of every CRD in objs,
// so clients built right after an install find them.
func waitServed(ctx context.Context, t *testing.T, a *harness.APIServer, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural")
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			name, _, _ := unstructured.NestedString(v.(map[string]any), "name")
			gv := group + "/" + name
			for {
				list, err := a.Client.Discovery().ServerResourcesForGroupVersion(gv)
				if err == nil && slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == plural }) {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("%s of %s not served: %v", plural, gv, err)
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
}
