package atomicwriter

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/secretmount/secretmount/providerclass"
)

func files(kv ...string) []providerclass.File {
	var out []providerclass.File
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, providerclass.File{Path: kv[i], Mode: 0o644, Bytes: []byte(kv[i+1])})
	}
	return out
}

func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name   string
		first  []providerclass.File
		second []providerclass.File
		want   map[string]string // what a reader sees after the second write
	}{
		{
			name:   "replace values",
			first:  files("a", "1", "b", "2"),
			second: files("a", "10", "b", "20"),
			want:   map[string]string{"a": "10", "b": "20"},
		},
		{
			name:   "drop a file",
			first:  files("a", "1", "b", "2"),
			second: files("a", "1"),
			want:   map[string]string{"a": "1"},
		},
		{
			name:   "nested paths",
			first:  files("dir/x", "1"),
			second: files("dir/x", "2", "dir/sub/y", "3", "z", "4"),
			want:   map[string]string{"dir/x": "2", "dir/sub/y": "3", "z": "4"},
		},
		{
			name:   "byte exact, no newline added",
			first:  files("p", ""),
			second: files("p", "pass\x00word\n\n"),
			want:   map[string]string{"p": "pass\x00word\n\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, tt.first, NoGroup); err != nil {
				t.Fatalf("first write: %v", err)
			}
			if err := Write(dir, tt.second, NoGroup); err != nil {
				t.Fatalf("second write: %v", err)
			}
			got := map[string]string{}
			for name := range tt.want {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("read %s: %v", name, err)
				}
				got[name] = string(b)
			}
			for name, want := range tt.want {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
			// Exactly the writer's entries: one data folder, ..data, and one link per
			// top-level name.
			entries, _ := os.ReadDir(dir)
			top := topLevelNames(keys(tt.want))
			var dataDirs, links int
			for _, e := range entries {
				switch {
				case e.Name() == DataLink:
				case strings.HasPrefix(e.Name(), ".."):
					dataDirs++
				case top[e.Name()]:
					links++
				default:
					t.Errorf("unexpected entry %s", e.Name())
				}
			}
			if dataDirs != 1 || links != len(top) {
				t.Errorf("data folders = %d, links = %d; want 1 and %d", dataDirs, links, len(top))
			}
			if !Same(dir, tt.second, NoGroup) {
				t.Errorf("sameContent is false right after the write")
			}
			if Same(dir, tt.first, NoGroup) && len(tt.first) != len(tt.second) {
				t.Errorf("sameContent is true for the old content")
			}
		})
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWriteAtomicModesAndGroup(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getgid()
	fs := []providerclass.File{
		{Path: "private", Mode: 0o400, Bytes: []byte("x")},
		{Path: "public", Mode: 0o644, Bytes: []byte("y")},
	}
	if err := Write(dir, fs, gid); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"private": 0o440, "public": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), want)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid {
			t.Errorf("%s gid = %d, want %d", name, st.Gid, gid)
		}
	}
	dir2 := t.TempDir()
	if err := Write(dir2, fs[:1], NoGroup); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir2, "private")); fi.Mode().Perm() != 0o400 {
		t.Errorf("without a group, mode = %v, want 0400", fi.Mode().Perm())
	}
	if Same(dir2, []providerclass.File{{Path: "private", Mode: 0o600, Bytes: []byte("x")}}, NoGroup) {
		t.Errorf("sameContent ignores a mode change")
	}
}

func TestWriteAtomicRejectsAndKeepsOldContent(t *testing.T) {
	tests := []struct {
		name  string
		files []providerclass.File
	}{
		{"parent escape", files("../x", "1")},
		{"absolute", files("/etc/passwd", "1")},
		{"writer's own name", files("..data", "1")},
		{"dot component", files("a/./b", "1")},
		{"empty name", files("", "1")},
		{"NUL", files("a\x00b", "1")},
		{"duplicate", files("a", "1", "a", "2")},
		{"file is also a folder", files("a", "1", "a/b", "2")},
		{"over-long component", files(strings.Repeat("n", 256), "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, files("a", "old"), NoGroup); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadDir(dir)
			if err := Write(dir, tt.files, NoGroup); err == nil {
				t.Fatal("write succeeded, want an error")
			}
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Errorf("entries %d → %d: the failed write left something", len(before), len(after))
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "old" {
				t.Errorf("a = %q, want the old content", b)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "x")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("something was written outside the folder")
			}
		})
	}
}

func TestWriteAtomicRefusesForeignTopLevelEntry(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("foreign"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files("a", "new"), NoGroup); err == nil {
		t.Fatal("write over a foreign file succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "foreign" {
		t.Errorf("foreign file changed to %q", b)
	}
	if err := Clear(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "foreign" {
		t.Errorf("clearLayout touched a foreign file")
	}
}

// FuzzWriterNames: whatever names come in, the writer either refuses them or writes
// every file inside the folder, and never anything outside it.
func FuzzWriterNames(f *testing.F) {
	for _, seed := range [][2]string{
		{"a", "b"}, {"dir/x", "y"}, {"../x", "a"}, {"/abs", "b"}, {"..data", "x"},
		{"a/../../b", "c"}, {"a\x00", "b"}, {"a//b", "c"}, {".", "a"}, {"a", "a/b"},
		{"..2026_01_01", "x"}, {"x/..data/y", "z"}, {strings.Repeat("n", 300), "a"}, {"a\\..\\b", "c"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		root := t.TempDir()
		dir := filepath.Join(root, "mount")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		in := files(a, "1", b, "2")
		err := Write(dir, in, NoGroup)
		// Nothing may appear beside the mount folder, whatever happened.
		if entries, _ := os.ReadDir(root); len(entries) != 1 {
			t.Fatalf("names %q, %q: %d entries beside the mount folder", a, b, len(entries))
		}
		if err != nil {
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("names %q, %q: refused but left %d entries", a, b, len(entries))
			}
			return
		}
		for _, f := range in {
			p := filepath.Join(dir, f.Path)
			if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("name %q was accepted but resolves outside the folder", f.Path)
			}
			got, rerr := os.ReadFile(p)
			if rerr != nil || string(got) != string(f.Bytes) {
				t.Fatalf("name %q: read back %q, %v", f.Path, got, rerr)
			}
		}
		if !Same(dir, in, NoGroup) {
			t.Fatalf("names %q, %q: sameContent false after a write", a, b)
		}
	})
}

// A writer killed mid-write leaves a half-filled data folder behind; the next write
// removes it with the folder it replaces, and leaves the pod's own entries alone.
func TestWriteSweepsHalfWrittenDataFolders(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, files("a", "1"), NoGroup); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "..2026_11_30_03_00_00.crashed")
	if err := os.MkdirAll(filepath.Join(stale, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "a"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files("a", "2"), NoGroup); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	current, _ := os.Readlink(filepath.Join(dir, DataLink))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if e.IsDir() && e.Name() != current {
			t.Errorf("data folder %s left beside the current %s", e.Name(), current)
		}
	}
	if len(names) != 3 { // ..data, the current folder, a
		t.Errorf("entries = %v, want ..data, %s and a", names, current)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "2" {
		t.Errorf("a = %q, want 2", b)
	}
}
