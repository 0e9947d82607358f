//go:build integration

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// makeSharedMount bind-mounts dir onto itself and makes it rshared, as kubelet's root
// folder must be: mounts made below it (the driver's tmpfs) propagate to kubelet and the
// runtime, and go away with it.
func makeSharedMount(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s onto itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s rshared: %w", dir, err)
	}
	return nil
}

// mountPoint is one line of /proc/self/mountinfo.
type mountPoint struct {
	Path   string
	FSType string
}

// mountsUnder lists the mounts at or below dir from /proc/self/mountinfo, deepest
// first.
func mountsUnder(dir string) ([]mountPoint, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []mountPoint
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// id parent major:minor root mount-point options [optional...] - fstype source super-options
		line := s.Text()
		fields := strings.Fields(line)
		_, after, ok := strings.Cut(line, " - ")
		if len(fields) < 5 || !ok {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, mountPoint{Path: p, FSType: strings.Fields(after)[0]})
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i].Path) > len(points[j].Path) })
	return points, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space, and so on).
func unescapeMountPath(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			var c byte
			if _, err := fmt.Sscanf(p[i+1:i+4], "%3o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// unmountUnder unmounts everything at or below dir, deepest first; a mount still busy is
// detached so nothing of the test stays visible.
func unmountUnder(dir string) error {
	points, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range points {
		p := m.Path
		if err := unix.Unmount(p, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}
