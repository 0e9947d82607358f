package install

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DeployNamespace and DeployRelease are what deploy/ is rendered with.
const (
	DeployNamespace = "secretmount-system"
	DeployRelease   = "secretmount"
)

const generatedHeader = "# Generated from charts/secretmount by `make manifests`; do not edit.\n"

// DeployFiles renders the chart with its default values into the files of deploy/,
// keyed by file name: CRDs in one file (apply it first), everything else in another.
func DeployFiles(chartDir string) (map[string][]byte, error) {
	r, err := Render(chartDir, Options{ReleaseName: DeployRelease, Namespace: DeployNamespace})
	if err != nil {
		return nil, err
	}
	var crds, main strings.Builder
	crds.WriteString(generatedHeader)
	for _, d := range r.CRDs {
		fmt.Fprintf(&crds, "---\n# Source: %s\n%s", d.Source, strings.TrimPrefix(d.YAML, "---\n"))
	}
	main.WriteString(generatedHeader)
	fmt.Fprintf(&main, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", DeployNamespace)
	for _, d := range r.Manifests {
		fmt.Fprintf(&main, "---\n# Source: %s\n%s", d.Source, d.YAML)
	}
	return map[string][]byte{
		"crds.yaml":        []byte(crds.String()),
		"secretmount.yaml": []byte(main.String()),
	}, nil
}

// WriteManifests writes DeployFiles into outDir, replacing what is there.
func WriteManifests(chartDir, outDir string) error {
	files, err := DeployFiles(chartDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", outDir, err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(outDir, name), b, 0o644); err != nil {
			return fmt.Errorf("failed to write %s: %w", name, err)
		}
	}
	return nil
}
