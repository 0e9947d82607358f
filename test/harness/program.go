package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Program is a process a test started with StartProgram: a secretmount role, the
// upstream driver, or any other binary the test runs beside the components.
type Program struct {
	Name string
	// PID is the process id, which is also its process group id.
	PID int
	// Log is the file that receives its standard output and error.
	Log string
	// Dir is the program's own temp folder (its working directory and HOME).
	Dir string
}

// ProgramSpec says how to run a program.
type ProgramSpec struct {
	Name string
	Path string
	Args []string
	// Env is the program's whole environment; nil means a minimal one (PATH, HOME, LANG),
	// so nothing of the test's own environment (AWS_*, VAULT_*, KUBECONFIG) leaks in.
	Env []string
	// Ready reports nil once the program serves (e.g. its socket exists); nil means ready
	// at once. It is polled until it succeeds, the program exits, or ReadyTimeout passes.
	Ready        func() error
	ReadyTimeout time.Duration // default one minute
}

// StartProgram runs spec in a process group of its own, with its output in a log file,
// waits until it is ready, and stops it by PID when t ends. If t fails, the end of the
// log is printed. A program that exits before it is ready fails t with its log.
func StartProgram(t testing.TB, spec ProgramSpec) *Program {
	t.Helper()
	in, err := newInstance(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	in.leakLogs = isSecretmountBinary(spec.Path)
	t.Cleanup(func() {
		if err := in.stop(); err != nil {
			t.Errorf("stopping %s: %v", spec.Name, err)
		}
	})
	log := in.path(spec.Name + ".log")
	p, err := in.start(processSpec{name: spec.Name, path: spec.Path, args: spec.Args, log: log, env: spec.Env})
	if err != nil {
		t.Fatal(in.failStartup(err))
	}
	in.logOnFailure(t)
	timeout := spec.ReadyTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	if spec.Ready != nil {
		if err := waitReady(spec.Name, timeout, []*process{p}, spec.Ready); err != nil {
			t.Fatal(in.failStartup(err))
		}
	}
	return &Program{Name: spec.Name, PID: p.pid(), Log: log, Dir: in.dir}
}

// FileExists is a Ready check for a program that creates path (a unix socket) once it serves.
func FileExists(path string) func() error {
	return func() error {
		_, err := os.Stat(path)
		return err
	}
}

var secretmountBinary struct {
	once sync.Once
	path string
	err  error
}

// SecretmountBinary builds cmd/secretmount once per test binary and returns its path.
func SecretmountBinary(t testing.TB) string {
	t.Helper()
	b := &secretmountBinary
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "secretmount-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "secretmount")
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/secretmount")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = &buildError{out: string(out), err: err}
		}
	})
	if b.err != nil {
		t.Fatalf("building secretmount: %v", b.err)
	}
	return b.path
}

// isSecretmountBinary reports whether path is the binary SecretmountBinary built, whose
// logs the leak scan reads (the upstream driver's and other programs' are not ours).
func isSecretmountBinary(path string) bool {
	b := &secretmountBinary
	return b.path != "" && path == b.path
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
