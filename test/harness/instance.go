package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxLogLines bounds how much of a component's log a failing test prints.
const maxLogLines = 300

// instance is what a started component owns: a temp folder (removed on stop) and its
// processes (stopped in reverse order of start).
type instance struct {
	name  string
	dir   string
	dirs  []string // more folders to remove, e.g. etcd's data in /dev/shm
	procs []*process
	// beforeStop runs first in stop, while the processes still serve (the leak scan's
	// record of an API server's events); leakLogs copies the logs for the leak scan once
	// the processes stopped.
	beforeStop func() error
	leakLogs   bool
}

func newInstance(name string) (*instance, error) {
	dir, err := os.MkdirTemp("", "secretmount-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("failed to create a temp folder for %s: %w", name, err)
	}
	return &instance{name: name, dir: dir}, nil
}

func (in *instance) path(elem ...string) string {
	return filepath.Join(append([]string{in.dir}, elem...)...)
}

func (in *instance) start(spec processSpec) (*process, error) {
	if spec.dir == "" {
		spec.dir = in.dir
	}
	p, err := startProcess(spec)
	if err != nil {
		return nil, err
	}
	in.procs = append(in.procs, p)
	return p, nil
}

// stop stops every process and removes the folders; it is safe to call twice.
func (in *instance) stop() error {
	var errs []error
	if in.beforeStop != nil && len(in.procs) > 0 {
		errs = append(errs, in.beforeStop())
	}
	for i := len(in.procs) - 1; i >= 0; i-- {
		if err := in.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if in.leakLogs && LeakRecording() {
		errs = append(errs, in.recordProgramLogs())
	}
	in.procs = nil
	for _, d := range append(in.dirs, in.dir) {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove %s: %w", d, err))
		}
	}
	in.dirs, in.dir = nil, ""
	return errors.Join(errs...)
}

// failStartup stops what was started and wraps err with the tails of the logs, so a
// component that would not start explains itself.
func (in *instance) failStartup(err error) error {
	tails := in.logTails(nil)
	if stopErr := in.stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	if tails == "" {
		return err
	}
	return fmt.Errorf("%w\n%s", err, tails)
}

// logOffsets records the current size of each log so a shared instance prints only what
// was written while one test ran.
func (in *instance) logOffsets() map[string]int64 {
	offsets := map[string]int64{}
	for _, p := range in.procs {
		if info, err := os.Stat(p.log); err == nil {
			offsets[p.log] = info.Size()
		}
	}
	return offsets
}

// logTails renders the end of each process's log from the given offsets.
func (in *instance) logTails(from map[string]int64) string {
	var b strings.Builder
	for _, p := range in.procs {
		text, err := readTail(p.log, from[p.log], maxLogLines)
		if err != nil {
			fmt.Fprintf(&b, "--- %s log %s: %v\n", p.name, p.log, err)
			continue
		}
		if text == "" {
			continue
		}
		fmt.Fprintf(&b, "--- %s log (last %d lines at most, from %s) ---\n%s", p.name, maxLogLines, p.log, text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// logOnFailure prints the logs written from now on if t fails. Register it after the
// stop cleanup: cleanups run last-in first-out, so it prints before the logs go away.
func (in *instance) logOnFailure(t testing.TB) {
	from := in.logOffsets()
	t.Cleanup(func() {
		if t.Failed() {
			if tails := in.logTails(from); tails != "" {
				t.Logf("%s logs while this test ran:\n%s", in.name, tails)
			}
		}
	})
}

func readTail(path string, from int64, maxLines int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return "", err
	}
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > maxLines {
			lines = lines[1:]
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}
