//go:build integration

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/secretmount/secretmount/test/harness"
)

// TestDemo runs `make demo`'s script in CI mode, as a newcomer's `make demo` would run
// it after `make setup`, and checks its exit code and the lines that show each part
// working. It needs root (the driver mounts a tmpfs) and every component.
func TestDemo(t *testing.T) {
	harness.RequireRoot(t)
	for _, p := range []string{harness.KubeAPIServerPath(), harness.BaoPath(), harness.MotoServerPath()} {
		if _, err := os.Stat(p); err != nil {
			harness.Unavailable(t, "component %s is missing: run make setup", p)
		}
	}
	repo := harness.RepoRoot(t)
	cmd := exec.Command("bash", filepath.Join(repo, "hack", "demo.sh"), "--ci", "--rotation-interval", "3s")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "BIN="+t.TempDir())
	outBytes, err := cmd.CombinedOutput()
	out := string(outBytes)
	// What the demo shows a newcomer masks every value.
	harness.RecordLeakText(t, harness.LeakLogs, out)
	if err != nil {
		t.Fatalf("hack/demo.sh --ci: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\[ 1\] starting etcd and kube-apiserver$`),
		regexp.MustCompile(`(?m)^\[19\] unpublishing the volume`),
		regexp.MustCompile(`(?m)^\s+db-password\s+-> \.\.data/db-password\s+-rw-r--r--\s+20 bytes\s+\*{8}$`),
		regexp.MustCompile(`\(filesystem: tmpfs\)`),
		regexp.MustCompile(`secret cnpg-system/postgres-credentials\s+\(Opaque\)\s+from the mount of postgres-aws-secrets: password \(20 bytes\), username \(8 bytes\)`),
		regexp.MustCompile(`secret cnpg-system/vault-postgres-credentials\s+\(kubernetes.io/basic-auth\)\s+from SecretSync of postgres-vault-secrets, label cnpg.io/reload=true`),
		regexp.MustCompile(`aws: the same 6 files as the mount, byte for byte`),
		regexp.MustCompile(`logged into PostgreSQL 15\.\S+ .*as postgres \(superuser\) with Secret postgres-credentials`),
		regexp.MustCompile(`(?m)^\s+mounted file db-password changed after `),
		regexp.MustCompile(`(?m)^\s+Secret vault-postgres-credentials changed after `),
		regexp.MustCompile(`(?m)^DEMO OK in `),
		regexp.MustCompile(`(?m)^make demo: total \d+s$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}
	if n := strings.Count(out, "logged into PostgreSQL"); n != 2 {
		t.Errorf("%d PostgreSQL logins, want 2 (before and after rotation)", n)
	}
	// The demo's values must never reach its output.
	for _, secret := range []string{"your-secure-password", "your-secret-key", "your-access-key", "rotated-"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows the value %q", secret)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
