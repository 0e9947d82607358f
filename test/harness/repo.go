package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/yaml"
)

const modulePath = "github.com/secretmount/secretmount"

// RepoRoot returns the root of the secretmount checkout the test runs in: the nearest
// folder above the working directory whose go.mod declares the module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("failed to get the working directory: %v", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module "+modulePath+"\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// FixturesDir returns ../shared/fixtures next to the checkout, the fixture files the
// tests use as they are, and fails the test when it is absent.
func FixturesDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "..", "shared", "fixtures")
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		t.Fatalf("fixtures folder %s is missing: the tests expect ../shared/fixtures beside the checkout", dir)
	}
	return dir
}

// FixtureClass reads a SecretProviderClass from the fixtures folder, as it is.
func FixtureClass(t testing.TB, name string) *secretsstorev1.SecretProviderClass {
	t.Helper()
	path := filepath.Join(FixturesDir(t), name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	var spc secretsstorev1.SecretProviderClass
	if err := yaml.UnmarshalStrict(b, &spc); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return &spc
}
