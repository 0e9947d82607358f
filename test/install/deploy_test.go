package install

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDeployUpToDate fails when deploy/ differs from what the chart renders: deploy/
// is generated and `make manifests` must be run after changing the chart.
func TestDeployUpToDate(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := DeployFiles(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, "deploy", name))
		if err != nil {
			t.Errorf("deploy/%s: %v (run make manifests)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/%s is stale: run make manifests", name)
		}
	}
}
