package atomicwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/secretmount/secretmount/providerclass"
)

// The layout is kubelet's AtomicWriter layout, which pods and tools already expect:
//
//	<dir>/..2026_11_30_03_00_00.123456/<files>   one folder per write
//	<dir>/..data -> ..2026_11_30_03_00_00.123456  swapped with rename(2), so readers see
//	                                              either the old set or the new one
//	<dir>/<top-level name> -> ..data/<top-level name>
const (
	// DataLink is the link that points at the current data folder.
	DataLink    = "..data"
	dataLinkTmp = "..data_tmp"
	// NoGroup leaves files in the writer's own group.
	NoGroup = -1
)

// Write replaces the files in dir with files. Until the ..data swap nothing a
// reader sees changes, and any error before it leaves the old content as it was. With a
// gid other than NoGroup every file and folder is given that group and group read.
// Writes to one dir must not run concurrently (the driver holds a lock per target).
func Write(dir string, files []providerclass.File, gid int) error {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Path
	}
	if err := validateFileSet(names); err != nil {
		return err
	}
	top := topLevelNames(names)
	if err := checkTopLevel(dir, top); err != nil {
		return err
	}
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("create data folder in %s: %w", dir, err)
	}
	if err := fillDataDir(tsDir, files, gid); err != nil {
		_ = os.RemoveAll(tsDir)
		return err
	}
	if err := swapDataLink(dir, filepath.Base(tsDir)); err != nil {
		_ = os.RemoveAll(tsDir)
		return err
	}
	// From here the new content is what readers see; what follows is tidying, and a
	// failure in it must not be mistaken for a failed write.
	var errs []error
	for name := range top {
		if err := ensureLink(dir, name); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, removeStaleLinks(dir, top))
	errs = append(errs, removeStaleDataDirs(dir, filepath.Base(tsDir)))
	errs = append(errs, syncDir(dir))
	return errors.Join(errs...)
}

func topLevelNames(names []string) map[string]bool {
	top := make(map[string]bool, len(names))
	for _, n := range names {
		first, _, _ := strings.Cut(n, "/")
		top[first] = true
	}
	return top
}

// checkTopLevel refuses to go on when a top-level name is taken by something the writer
// did not make, so it never replaces a foreign file after the swap.
func checkTopLevel(dir string, top map[string]bool) error {
	for name := range top {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inspect %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return fmt.Errorf("%s exists and was not made by the writer", p)
		}
		if target, err := os.Readlink(p); err != nil || target != filepath.Join(DataLink, name) {
			return fmt.Errorf("%s exists and was not made by the writer", p)
		}
	}
	return nil
}

func fillDataDir(tsDir string, files []providerclass.File, gid int) error {
	dirs := []string{tsDir}
	if err := prepareDir(tsDir, gid); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(tsDir, f.Path)
		for parent := filepath.Dir(p); parent != tsDir; parent = filepath.Dir(parent) {
			if _, err := os.Lstat(parent); err == nil {
				break
			}
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("create folder of file %q: %w", f.Path, err)
			}
		}
		for parent := filepath.Dir(p); parent != tsDir; parent = filepath.Dir(parent) {
			if err := prepareDir(parent, gid); err != nil {
				return err
			}
			dirs = append(dirs, parent)
		}
		if err := writeFile(p, f, gid); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

func prepareDir(p string, gid int) error {
	if err := os.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("set mode of %s: %w", p, err)
	}
	if gid != NoGroup {
		if err := os.Chown(p, -1, gid); err != nil {
			return fmt.Errorf("set group of %s: %w", p, err)
		}
	}
	return nil
}

// fileMode is the mode a file is written with: its planned mode, plus group read when the
// volume has a mount group (the pod reads through that group).
func fileMode(f providerclass.File, gid int) os.FileMode {
	mode := f.Mode.Perm()
	if gid != NoGroup {
		mode |= 0o040
	}
	return mode
}

func writeFile(p string, f providerclass.File, gid int) (err error) {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create file %q: %w", f.Path, err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close file %q: %w", f.Path, cerr)
		}
	}()
	if _, err := out.Write(f.Bytes); err != nil {
		return fmt.Errorf("write file %q: %w", f.Path, err)
	}
	if gid != NoGroup {
		if err := out.Chown(-1, gid); err != nil {
			return fmt.Errorf("set group of file %q: %w", f.Path, err)
		}
	}
	// Chmod after create: the umask must not change the planned mode.
	if err := out.Chmod(fileMode(f, gid)); err != nil {
		return fmt.Errorf("set mode of file %q: %w", f.Path, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync file %q: %w", f.Path, err)
	}
	return nil
}

func swapDataLink(dir, tsName string) error {
	tmp := filepath.Join(dir, dataLinkTmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	if err := os.Symlink(tsName, tmp); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, DataLink)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("swap %s in %s: %w", DataLink, dir, err)
	}
	return nil
}

func ensureLink(dir, name string) error {
	p := filepath.Join(dir, name)
	want := filepath.Join(DataLink, name)
	if got, err := os.Readlink(p); err == nil && got == want {
		return nil
	}
	if err := os.Symlink(want, p); err != nil {
		return fmt.Errorf("link %s: %w", p, err)
	}
	return nil
}

// removeStaleDataDirs removes every data folder but the current one: the one ..data
// pointed at before, and any a writer left half made when its process died mid-write
// (nothing else would ever remove those until unmount). Writes to one folder are
// serialised by the caller, so no other write is filling a folder here.
func removeStaleDataDirs(dir, current string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if name := e.Name(); e.IsDir() && strings.HasPrefix(name, "..") && name != current {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
		}
	}
	return errors.Join(errs...)
}

// removeStaleLinks drops the top-level links of names the new content no longer has.
func removeStaleLinks(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if keep[name] || strings.HasPrefix(name, "..") || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, name)); err == nil && target == filepath.Join(DataLink, name) {
			errs = append(errs, os.Remove(filepath.Join(dir, name)))
		}
	}
	return errors.Join(errs...)
}

// Clear removes everything the writer made in dir and nothing else.
func Clear(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == DataLink || name == dataLinkTmp:
			errs = append(errs, os.Remove(p))
		case strings.HasPrefix(name, "..") && e.IsDir():
			errs = append(errs, os.RemoveAll(p))
		case e.Type()&fs.ModeSymlink != 0:
			if target, err := os.Readlink(p); err == nil && target == filepath.Join(DataLink, name) {
				errs = append(errs, os.Remove(p))
			}
		}
	}
	return errors.Join(errs...)
}

// Same reports whether dir already holds exactly files (names, bytes, modes and
// group), so an unchanged refresh writes nothing.
func Same(dir string, files []providerclass.File, gid int) bool {
	ts, err := os.Readlink(filepath.Join(dir, DataLink))
	if err != nil {
		return false
	}
	data := filepath.Join(dir, ts)
	count := 0
	walkErr := filepath.WalkDir(data, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			count++
		}
		return nil
	})
	if walkErr != nil || count != len(files) {
		return false
	}
	for _, f := range files {
		if validateFileName(f.Path) != nil {
			return false
		}
		p := filepath.Join(data, f.Path)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != fileMode(f, gid) {
			return false
		}
		if gid != NoGroup {
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Gid) != gid {
				return false
			}
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.Bytes) {
			return false
		}
		first, _, _ := strings.Cut(f.Path, "/")
		if link, err := os.Readlink(filepath.Join(dir, first)); err != nil || link != filepath.Join(DataLink, first) {
			return false
		}
	}
	return true
}

// syncDir and the file syncs are kept for `secretmount render`, which writes to a disk.
// On the driver's tmpfs they are no-ops that cost one system call each (under 1% of a
// publish in a CPU profile), so there is nothing to win by skipping them there.
func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", p, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", p, err)
	}
	return nil
}
