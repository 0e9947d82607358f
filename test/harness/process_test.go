package harness

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func shell(t *testing.T, in *instance, script string) *process {
	t.Helper()
	p, err := in.start(processSpec{name: "sh", path: "/bin/sh", args: []string{"-c", script}, log: in.path("sh.log")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testInstance(t *testing.T) *instance {
	t.Helper()
	in, err := newInstance("unit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.stop(); err != nil {
			t.Error(err)
		}
	})
	return in
}

// alive reports whether pid names a process that has not exited (zombies count as gone).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestStopReachesTheWholeProcessGroup(t *testing.T) {
	in := testInstance(t)
	pidFile := in.path("child.pid")
	p := shell(t, in, "sleep 300 & echo $! > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+"; wait")
	var child int
	err := waitReady("child pid file", stopGrace, []*process{p}, func() error {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !alive(child) {
		t.Fatalf("child %d is not running before stop", child)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if p.exitedErr() == nil {
		t.Error("the leader is still running after stop")
	}
	if alive(child) {
		syscall.Kill(child, syscall.SIGKILL)
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		t.Errorf("child %d of the stopped process survived: %s", child, st)
	}
}

func TestWaitReadyGivesUpWhenTheProcessExits(t *testing.T) {
	in := testInstance(t)
	p := shell(t, in, "echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 3")
	calls := 0
	err := waitReady("never", stopGrace, []*process{p}, func() error {
		calls++
		return errors.New("not yet")
	})
	if err == nil || !strings.Contains(err.Error(), "exited early") {
		t.Fatalf("err = %v, want an early exit", err)
	}
	// What a starter returns: the error with the log's tail, which retryPortClash reads.
	full := in.failStartup(err)
	if !strings.Contains(full.Error(), "address already in use") || !strings.Contains(full.Error(), "exit status 3") {
		t.Errorf("startup error does not carry the log and exit status:\n%v", full)
	}
	if _, statErr := os.Stat(in.dir); in.dir != "" || statErr == nil {
		t.Errorf("failStartup left the instance folder behind")
	}
}

func TestRetryPortClash(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   bool
	}{
		{name: "first try", errs: []error{nil}, wantCalls: 1},
		{name: "clash then start", errs: []error{errors.New("bind: address already in use"), nil}, wantCalls: 2},
		{name: "other error is not retried", errs: []error{errors.New("bad flag")}, wantCalls: 1, wantErr: true},
		{name: "clashes every time", errs: []error{
			errors.New("address already in use"), errors.New("address already in use"), errors.New("address already in use"),
		}, wantCalls: portAttempts, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			_, err := retryPortClash(func() (int, error) {
				err := tt.errs[calls]
				calls++
				return calls, err
			})
			if calls != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Errorf("calls = %d, err = %v; want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}

func TestReadTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 10 {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	offset := int64(len("line 0\nline 1\n"))
	tests := []struct {
		name string
		from int64
		max  int
		want string
	}{
		{name: "all", from: 0, max: 100, want: b.String()},
		{name: "last lines", from: 0, max: 2, want: "line 8\nline 9\n"},
		{name: "from an offset", from: offset, max: 100, want: strings.TrimPrefix(b.String(), "line 0\nline 1\n")},
		{name: "nothing new", from: int64(b.Len()), max: 100, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readTail(path, tt.from, tt.max)
			if err != nil || got != tt.want {
				t.Errorf("readTail = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSharedNeedsMain(t *testing.T) {
	r := &recorder{}
	if m := SharedMoto(r); m != nil {
		t.Fatalf("SharedMoto without harness.Main returned %v", m)
	}
	if !strings.Contains(r.fatal, "harness.Main(m)") {
		t.Errorf("fatal = %q, want it to say TestMain must call harness.Main", r.fatal)
	}
}

func TestFreePortsDiffer(t *testing.T) {
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("ports %v are not distinct", ports)
	}
}

// A component must outlive the thread that happened to start it: Go ends a thread when a
// goroutine exits while locked to it, and the parent-death signal follows that thread.
func TestProcessSurvivesItsStartersThreadEnding(t *testing.T) {
	in := testInstance(t)
	started := make(chan *process)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread ends with the goroutine
		p, err := in.start(processSpec{name: "sleep", path: "/bin/sleep", args: []string{"300"}, log: in.path("sleep.log")})
		if err != nil {
			t.Error(err)
		}
		started <- p
	}()
	p := <-started
	if p == nil {
		t.FailNow()
	}
	// The locked goroutine has exited; its thread goes with it. Start another process
	// from the spawner and wait for it, so the first has had time to be killed if the
	// death signal had followed the ended thread.
	probe := shell(t, in, "exit 0")
	<-probe.exited
	if err := p.exitedErr(); err != nil {
		t.Fatalf("the component died with its starter's thread: %v", err)
	}
}
