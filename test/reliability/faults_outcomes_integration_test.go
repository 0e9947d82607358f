//go:build integration

package reliability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
)

// outcomes tallies publishes by gRPC code and keeps the first problems seen.
type outcomes struct {
	mu     sync.Mutex
	byCode map[codes.Code]int
	// sample is the first message of each failure cause, for the log.
	sample map[string]string
	// causes counts failures by the transport or backend cause their message names.
	causes   map[string]int
	problems []string
	extra    int
}

func newOutcomes() *outcomes {
	return &outcomes{byCode: map[codes.Code]int{}, sample: map[string]string{}, causes: map[string]int{}}
}

func (o *outcomes) add(err error) codes.Code {
	c := status.Code(err)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byCode[c]++
	if err == nil {
		return c
	}
	msg := status.Convert(err).Message()
	cause := causeOf(msg)
	if _, ok := o.sample[cause]; !ok {
		o.sample[cause] = c.String() + ": " + msg
	}
	o.causes[cause]++
	return c
}

// status5xx finds an HTTP 5xx status in a failure message, as the AWS and Vault
// errors state it.
var status5xx = regexp.MustCompile(`(?i)(status|code:?) 5[0-9][0-9]`)

// causeOf sorts a failure message by the fault behind it.
func causeOf(msg string) string {
	switch {
	case strings.Contains(msg, "deadline exceeded"):
		return "deadline exceeded"
	case strings.Contains(msg, "malformed response"):
		return "malformed (truncated) response"
	case strings.Contains(msg, "unexpected EOF"):
		return "truncated body"
	case strings.Contains(msg, "connection reset"):
		return "connection reset"
	case status5xx.MatchString(msg):
		return "HTTP 5xx"
	case strings.Contains(msg, "EOF"):
		return "connection closed"
	}
	return "other"
}

// causeSummary lists failures by cause.
func (o *outcomes) causeSummary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for c, n := range o.causes {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// samples lists one failure message per cause.
func (o *outcomes) samples() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, m := range o.sample {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func (o *outcomes) problem(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.problems) < 10 {
		o.problems = append(o.problems, fmt.Sprintf(format, args...))
		return
	}
	o.extra++
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for c, n := range o.byCode {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// report fails t with the problems collected by the workers.
func (o *outcomes) report(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.problems {
		t.Error(p)
	}
	if o.extra > 0 {
		t.Errorf("and %d more problems", o.extra)
	}
}

// publishOnce publishes v and checks the outcome: exact files then an unpublish that
// leaves nothing, or a failure with Unavailable or DeadlineExceeded that left no mount
// and nothing in the target folder. It runs on worker goroutines, so it records
// problems instead of failing the test.
func publishOnce(fd *faultDriver, v csiclient.Volume, want map[string]string, out *outcomes) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := out.add(fd.csi.Publish(ctx, v))
	switch code {
	case codes.OK:
		if got, err := topFiles(v.TargetPath); err != nil {
			out.problem("pod %s: published, but reading its files: %v", v.Pod.Name, err)
		} else if diff := diffFiles(got, want); diff != "" {
			out.problem("pod %s: published files differ from the backend's: %s", v.Pod.Name, diff)
		}
		if err := fd.csi.Unpublish(ctx, v); err != nil {
			out.problem("pod %s: unpublish: %v", v.Pod.Name, err)
		}
		if err := leftNothing(v.TargetPath); err != nil {
			out.problem("pod %s: after unpublish: %v", v.Pod.Name, err)
		}
	case codes.Unavailable, codes.DeadlineExceeded:
		if err := leftNothing(v.TargetPath); err != nil {
			out.problem("pod %s: failed publish (%s): %v", v.Pod.Name, code, err)
		}
	default:
		out.problem("pod %s: publish failed with %s, want OK, Unavailable or DeadlineExceeded", v.Pod.Name, code)
		if err := leftNothing(v.TargetPath); err != nil {
			out.problem("pod %s: failed publish (%s): %v", v.Pod.Name, code, err)
		}
	}
}

// runPublishes publishes volumes 0..n-1 (made by volume) on workers goroutines.
func runPublishes(n, workers int, publish func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				publish(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// topFiles reads the files a pod sees in a published folder (the writer's ".."
// entries are its own).
func topFiles(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = string(b)
	}
	return out, nil
}

// diffFiles names the files that differ, never their contents (they are secrets).
func diffFiles(got, want map[string]string) string {
	var diffs []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, name+" missing")
		case g != w:
			diffs = append(diffs, name+" has other content")
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, name+" unexpected")
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, ", ")
}

// renderedFiles is what a volume of spc must hold when the backend has values (one per
// plan object, in order): the planner's own rendering.
func renderedFiles(t *testing.T, plan *providerclass.Plan, values ...string) map[string]string {
	t.Helper()
	if len(values) != len(plan.Objects) {
		t.Fatalf("%d values for %d objects", len(values), len(plan.Objects))
	}
	contents := make([]providerclass.ObjectContent, len(values))
	for i, v := range values {
		contents[i] = providerclass.ObjectContent{Bytes: []byte(v), Version: "v"}
	}
	files, err := plan.Render(contents)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[f.Path] = string(f.Bytes)
	}
	return out
}

// leftNothing checks that target is not a mount point and holds nothing (it may be
// absent, or an empty folder).
func leftNothing(target string) error {
	mounted, err := isMountPoint(target)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s is still a mount point", target)
	}
	entries, err := os.ReadDir(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		return fmt.Errorf("%s holds %v", target, names)
	}
	return nil
}

// isMountPoint reads /proc/self/mountinfo; it does not fail a test, so workers can
// call it.
func isMountPoint(path string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			return true, nil
		}
	}
	return false, s.Err()
}
