package harness

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestStartProgramWaitsAndStops(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	var pid int
	t.Run("running", func(t *testing.T) {
		p := StartProgram(t, ProgramSpec{
			Name: "sleeper", Path: "/bin/sh",
			Args:  []string{"-c", "sleep 0.2; touch " + ready + "; exec sleep 60"},
			Ready: FileExists(ready),
		})
		if _, err := os.Stat(ready); err != nil {
			t.Fatalf("StartProgram returned before the program was ready: %v", err)
		}
		if err := syscall.Kill(p.PID, 0); err != nil {
			t.Fatalf("program %d is not running: %v", p.PID, err)
		}
		pid = p.PID
	})
	if groupAlive(pid) {
		t.Errorf("program group %d still runs after its test ended", pid)
	}
}
