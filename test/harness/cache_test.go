package harness

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The harness looks for components where hack/setup builds them; the versions in the
// two places must agree or every integration test skips (or fails in CI) as "missing".
func TestVersionsMatchSetupScripts(t *testing.T) {
	lib, err := os.ReadFile(filepath.Join(RepoRoot(t), "hack", "setup", "lib.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		variable string
		want     string
	}{
		{variable: "KUBE_VERSION", want: defaultKubeVersion},
		{variable: "OPENBAO_MODULE_VERSION", want: defaultOpenBaoModuleVersion},
		{variable: "MOTO_VERSION", want: defaultMotoVersion},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			re := regexp.MustCompile(tt.variable + `="\$\{` + tt.variable + `:-([^}]+)\}"`)
			m := re.FindSubmatch(lib)
			if m == nil {
				t.Fatalf("hack/setup/lib.sh does not set %s with a default", tt.variable)
			}
			if got := string(m[1]); got != tt.want {
				t.Errorf("hack/setup/lib.sh builds %s %s, the harness looks for %s", tt.variable, got, tt.want)
			}
		})
	}
}

func TestCachePathsFollowTheEnvironment(t *testing.T) {
	t.Setenv("SECRETMOUNT_CACHE", "/c")
	t.Setenv("KUBE_VERSION", "v9.9.9")
	t.Setenv("OPENBAO_MODULE_VERSION", "")
	t.Setenv("MOTO_VERSION", "")
	tests := map[string]string{
		KubeAPIServerPath(): "/c/kubernetes-v9.9.9/kube-apiserver",
		BaoPath():           "/c/openbao-" + defaultOpenBaoModuleVersion + "/bao",
		MotoServerPath():    "/c/moto-" + defaultMotoVersion + "/bin/moto_server",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("path = %s, want %s", got, want)
		}
	}
}
