package harness

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Versions of the built components, the same defaults (and the same environment
// overrides) as hack/setup/lib.sh, which builds them into the cache under these names.
const (
	defaultKubeVersion          = "v1.34.4"
	defaultOpenBaoModuleVersion = "v0.0.0-20250828202315-f9407a27fbee"
	defaultMotoVersion          = "5.2.5"
	defaultPostgresBinDir       = "/usr/lib/postgresql/15/bin"
	setupHint                   = "run `make setup` (hack/setup/all.sh) to build it"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// CacheDir is where hack/setup puts built components: $SECRETMOUNT_CACHE, or
// $HOME/.cache/secretmount.
func CacheDir() string {
	if d := os.Getenv("SECRETMOUNT_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "secretmount")
}

// KubeAPIServerPath is the kube-apiserver binary built by hack/setup/kubernetes.sh.
func KubeAPIServerPath() string {
	return filepath.Join(CacheDir(), "kubernetes-"+envOr("KUBE_VERSION", defaultKubeVersion), "kube-apiserver")
}

// BaoPath is the OpenBao binary built by hack/setup/openbao.sh.
func BaoPath() string {
	return filepath.Join(CacheDir(), "openbao-"+envOr("OPENBAO_MODULE_VERSION", defaultOpenBaoModuleVersion), "bao")
}

// MotoServerPath is moto's standalone server in the virtualenv hack/setup/packages.sh makes.
func MotoServerPath() string {
	return filepath.Join(CacheDir(), "moto-"+envOr("MOTO_VERSION", defaultMotoVersion), "bin", "moto_server")
}

// PostgresBinDir holds Debian's PostgreSQL 15 server binaries (initdb, postgres).
func PostgresBinDir() string { return envOr("SECRETMOUNT_POSTGRES_BIN", defaultPostgresBinDir) }

// executable returns path when it is an executable file, or an unavailable error that
// says how to get it.
func executable(path, what string) (string, error) {
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", unavailablef("%s not found at %s; %s", what, path, setupHint)
	}
	return path, nil
}

// lookPath finds a system binary (etcd from Debian) on PATH or in the usual places.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/bin", "/usr/local/bin", "/usr/sbin"} {
		if p, err := executable(filepath.Join(dir, name), name); err == nil {
			return p, nil
		}
	}
	return "", unavailablef("%s not found on PATH; %s", name, setupHint)
}
