//go:build integration

package interop

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// mountedFile is a file as a pod sees it: through the atomic writer's symlinks.
type mountedFile struct {
	Mode  fs.FileMode
	Bytes []byte
}

// readMount returns every file a pod would see under dir, by relative path, following
// the writer's symlinks and skipping its own "..data" and "..<timestamp>" entries.
func readMount(t *testing.T, dir string) map[string]mountedFile {
	t.Helper()
	out := map[string]mountedFile{}
	var walk func(rel string)
	walk = func(rel string) {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			t.Fatalf("reading %s: %v", filepath.Join(dir, rel), err)
		}
		for _, e := range entries {
			if rel == "" && strings.HasPrefix(e.Name(), "..") {
				continue
			}
			p := filepath.Join(rel, e.Name())
			fi, err := os.Stat(filepath.Join(dir, p))
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if fi.IsDir() {
				walk(p)
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				t.Fatalf("reading %s: %v", p, err)
			}
			out[p] = mountedFile{Mode: fi.Mode().Perm(), Bytes: b}
		}
	}
	walk("")
	return out
}

// sameMount fails the test where two mounts differ, naming paths and modes but never
// printing file contents (they are secrets in real use).
func sameMount(t *testing.T, what string, want, got map[string]mountedFile) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		w, wok := want[n]
		g, gok := got[n]
		switch {
		case !wok:
			t.Errorf("%s: unexpected file %s", what, n)
		case !gok:
			t.Errorf("%s: missing file %s", what, n)
		case w.Mode != g.Mode:
			t.Errorf("%s: %s has mode %o, want %o", what, n, g.Mode, w.Mode)
		case !bytes.Equal(w.Bytes, g.Bytes):
			t.Errorf("%s: %s differs (%d bytes, want %d)", what, n, len(g.Bytes), len(w.Bytes))
		}
	}
	if len(want) == 0 {
		t.Errorf("%s: nothing to compare", what)
	}
}

func fileNames(files map[string]mountedFile) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
