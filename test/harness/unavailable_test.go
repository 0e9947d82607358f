package harness

import (
	"fmt"
	"strings"
	"testing"
)

// recorder stands in for a test to see which of Fatalf and Skipf a helper calls; the
// embedded TB is nil, so any other method panics and shows up.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

func TestUnavailable(t *testing.T) {
	tests := []struct {
		ci        string
		wantFatal bool
	}{
		{ci: "true", wantFatal: true},
		{ci: "", wantFatal: false},
		{ci: "false", wantFatal: false},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{}
			Unavailable(r, "moto_server not found at %s", "/x")
			got := r.skip
			if tt.wantFatal {
				got = r.fatal
				if r.skip != "" {
					t.Errorf("skipped as well as failed: %q", r.skip)
				}
			} else if r.fatal != "" {
				t.Errorf("failed, want a skip: %q", r.fatal)
			}
			if !strings.Contains(got, "moto_server not found at /x") {
				t.Errorf("message = %q, want it to name what is missing", got)
			}
		})
	}
}

func TestFailStartTellsMissingFromBroken(t *testing.T) {
	t.Setenv("CI", "")
	tests := []struct {
		name      string
		err       error
		wantFatal bool
	}{
		{name: "missing binary", err: fmt.Errorf("wrapped: %w", unavailablef("bao not found")), wantFatal: false},
		{name: "crashed", err: fmt.Errorf("bao exited early"), wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			failStart(r, "Vault", tt.err)
			if gotFatal := r.fatal != ""; gotFatal != tt.wantFatal {
				t.Errorf("fatal = %q, skip = %q; want fatal %v", r.fatal, r.skip, tt.wantFatal)
			}
		})
	}
}

func TestExecutableReportsMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := executable(dir+"/absent", "kube-apiserver")
	if u, ok := err.(*unavailableError); !ok || !strings.Contains(u.msg, "make setup") {
		t.Fatalf("err = %v, want an unavailable error that says how to get it", err)
	}
	if _, err := executable(dir, "a folder"); err == nil {
		t.Fatal("a folder passed as an executable")
	}
}
