package install

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the Kubernetes version the chart is rendered for when Options leave
// it empty; the integration tests run the same version of kube-apiserver.
const KubeVersion = "v1.34.4"

// Options says how to render the chart.
type Options struct {
	ReleaseName string
	Namespace   string
	// Values are the user-supplied values, as a -f values file would give them.
	Values map[string]any
	// KubeVersion defaults to the package's KubeVersion.
	KubeVersion string
	// APIVersions are extra API group versions the target cluster serves (as
	// `helm template --api-versions`).
	APIVersions []string
}

// Document is one rendered YAML document and the chart file it came from.
type Document struct {
	Source string
	YAML   string
}

// Rendered is the chart's output: CRDs first (as Helm installs them), then the
// templates in Helm's install order.
type Rendered struct {
	CRDs      []Document
	Manifests []Document
}

// LoadChart loads the chart folder.
func LoadChart(dir string) (*chart.Chart, error) {
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to load chart %s: %w", dir, err)
	}
	return c, nil
}

// Render renders the chart in dir the way `helm template` does: values are checked
// against values.schema.json and templates are executed, without contacting a cluster.
func Render(dir string, o Options) (*Rendered, error) {
	c, err := LoadChart(dir)
	if err != nil {
		return nil, err
	}
	kv, err := chartutil.ParseKubeVersion(orDefault(o.KubeVersion, KubeVersion))
	if err != nil {
		return nil, fmt.Errorf("failed to parse kube version %q: %w", o.KubeVersion, err)
	}
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	inst := action.NewInstall(cfg)
	inst.ClientOnly = true
	inst.DryRun = true
	inst.Replace = true
	inst.IncludeCRDs = false
	inst.DisableHooks = true
	inst.ReleaseName = orDefault(o.ReleaseName, "secretmount")
	inst.Namespace = orDefault(o.Namespace, "default")
	inst.KubeVersion = kv
	inst.APIVersions = o.APIVersions
	vals := o.Values
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := inst.Run(c, vals)
	if err != nil {
		return nil, fmt.Errorf("failed to render chart %s: %w", dir, err)
	}
	out := &Rendered{}
	for _, f := range c.CRDObjects() {
		out.CRDs = append(out.CRDs, Document{Source: f.Filename, YAML: strings.TrimSpace(string(f.File.Data)) + "\n"})
	}
	sort.Slice(out.CRDs, func(i, j int) bool { return out.CRDs[i].Source < out.CRDs[j].Source })
	split := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, k := range keys {
		doc := strings.TrimSpace(split[k])
		source := ""
		if first, rest, ok := strings.Cut(doc, "\n"); ok && strings.HasPrefix(first, "# Source: ") {
			source, doc = strings.TrimPrefix(first, "# Source: "), strings.TrimSpace(rest)
		}
		if doc == "" {
			continue
		}
		out.Manifests = append(out.Manifests, Document{Source: source, YAML: doc + "\n"})
	}
	return out, nil
}

// Objects parses every document, CRDs first.
func (r *Rendered) Objects() ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, d := range append(append([]Document{}, r.CRDs...), r.Manifests...) {
		o, err := parseObjects(d)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// parseObjects parses one document; a CRD file may hold several, split by "---".
func parseObjects(d Document) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for i, part := range strings.Split("\n"+d.YAML, "\n---") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(part), &m); err != nil {
			return nil, fmt.Errorf("failed to parse document %d of %s: %w", i, d.Source, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("document %d of %s has no kind, apiVersion or name", i, d.Source)
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// ReadValuesFile reads a values YAML file as `helm install -f` does.
func ReadValuesFile(path string) (map[string]any, error) {
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read values file %s: %w", path, err)
	}
	return v.AsMap(), nil
}

// RepoRoot finds the module root from the working folder (go test runs in the
// package folder; go run in wherever it is started).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("failed to get working folder: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/secretmount/secretmount\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no secretmount go.mod above the working folder")
		}
		dir = parent
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
