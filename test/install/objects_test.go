package install

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// chartDir is the chart under test, found from the module root.
func chartDir(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "secretmount")
}

func render(t *testing.T, o Options) []*unstructured.Unstructured {
	t.Helper()
	r, err := Render(chartDir(t), o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := r.Objects()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func upstreamValues(t *testing.T) map[string]any {
	t.Helper()
	v, err := ReadValuesFile(filepath.Join("testdata", "upstream-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// find returns the one object of kind whose name ends with suffix.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if found != nil {
				t.Fatalf("two %s objects named %s", kind, name)
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("no %s named %s rendered", kind, name)
	}
	return found
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.GetKind()]++
	}
	return m
}

// containers returns the pod template's containers of a workload by name.
func containers(t *testing.T, o *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	list, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if err != nil || len(list) == 0 {
		t.Fatalf("%s %s has no containers (%v)", o.GetKind(), o.GetName(), err)
	}
	m := map[string]map[string]any{}
	for _, c := range list {
		cm := c.(map[string]any)
		m[cm["name"].(string)] = cm
	}
	return m
}

func args(t *testing.T, c map[string]any) []string {
	t.Helper()
	var out []string
	raw, _ := c["args"].([]any)
	for _, a := range raw {
		out = append(out, a.(string))
	}
	return out
}

func nested(o map[string]any, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(o, path...)
	return v
}
