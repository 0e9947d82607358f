package providerclass

import (
	"os"
	"path/filepath"
	"testing"

	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"
)

// fixture reads one of the shared reference SecretProviderClasses, which live beside
// the repository in ../shared/fixtures.
func fixture(t testing.TB, name string) *secretsstorev1.SecretProviderClass {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (no go.mod above the test)")
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "fixtures", name)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("shared fixture %s is missing (expected beside the repository): %v", path, err)
	}
	var spc secretsstorev1.SecretProviderClass
	if err := yaml.UnmarshalStrict(raw, &spc); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return &spc
}
