//go:build integration

package reliability

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/secretmount/secretmount/driver/atomicwriter"
	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// smallTmpfsSize is the size limit of the tmpfs the tests fill: room for the first
// set of files, not for the second.
const smallTmpfsSize = "256k"

// mountSmallTmpfs mounts a size-limited tmpfs at dir and unmounts it when the test ends.
// The driver mounts its tmpfs without a size option, so a full tmpfs is made here.
func mountSmallTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	m := mount.New("")
	if err := m.Mount("tmpfs", dir, "tmpfs", []string{"nosuid", "nodev", "noexec", "size=" + smallTmpfsSize}); err != nil {
		t.Fatalf("mount small tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if notMnt, err := m.IsLikelyNotMountPoint(dir); err == nil && !notMnt {
			if err := m.Unmount(dir); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
}

func fillerFiles(marker string, sizes map[string]int) []providerclass.File {
	var out []providerclass.File
	for name, size := range sizes {
		out = append(out, providerclass.File{Path: name, Mode: 0o644, Bytes: bytes.Repeat([]byte(marker), size/len(marker))})
	}
	return out
}

// readTop reads every regular file reachable from dir's top-level names.
func readTop(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("read %s: %v", e.Name(), err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func names(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name()
	}
	return out, nil
}

// TestFullTmpfsKeepsOldContent writes with the driver's atomic writer into a tmpfs
// whose size limit the second write exceeds: the write fails with ENOSPC naming the
// file, the first set stays readable as it was, the failed data folder is gone, and a
// write that fits succeeds afterwards.
func TestFullTmpfsKeepsOldContent(t *testing.T) {
	harness.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "small")
	mountSmallTmpfs(t, dir)

	first := fillerFiles("old-value-", map[string]int{"a": 40 << 10, "b": 40 << 10})
	if err := atomicwriter.Write(dir, first, atomicwriter.NoGroup); err != nil {
		t.Fatalf("first write: %v", err)
	}
	before := readTop(t, dir)
	beforeNames, err := names(dir)
	if err != nil {
		t.Fatal(err)
	}

	second := fillerFiles("new-value-", map[string]int{"a": 40 << 10, "b": 40 << 10, "huge": 300 << 10})
	err = atomicwriter.Write(dir, second, atomicwriter.NoGroup)
	if err == nil {
		t.Fatal("a write larger than the tmpfs succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("error is not ENOSPC: %v", err)
	}
	if !strings.Contains(err.Error(), `"huge"`) && !strings.Contains(err.Error(), `"a"`) && !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("error names no file: %v", err)
	}
	if strings.Contains(err.Error(), "value-") {
		t.Errorf("error quotes file content: %v", err)
	}
	t.Logf("full tmpfs error: %v", err)

	after := readTop(t, dir)
	if len(after) != len(before) {
		t.Fatalf("files after the failed write: %d, before: %d", len(after), len(before))
	}
	for name, v := range before {
		if after[name] != v {
			t.Errorf("%s changed by the failed write", name)
		}
	}
	afterNames, err := names(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(afterNames, "\n") != strings.Join(beforeNames, "\n") {
		t.Errorf("folder entries changed by the failed write: %v, before %v", afterNames, beforeNames)
	}

	fits := fillerFiles("next-value-", map[string]int{"a": 40 << 10, "c": 40 << 10})
	if err := atomicwriter.Write(dir, fits, atomicwriter.NoGroup); err != nil {
		t.Fatalf("a write that fits after the failed one: %v", err)
	}
	got := readTop(t, dir)
	if len(got) != 2 || !strings.HasPrefix(got["a"], "next-value-") || !strings.HasPrefix(got["c"], "next-value-") {
		t.Errorf("after the write that fits: files %v", keys(got))
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFullTmpfsRepublish is the same through the real driver: the target is a
// size-limited tmpfs before the first publish (the driver then writes into it), and a
// rotation that does not fit fails the republish with a message naming the volume and
// the file while the mounted files keep their content.
func TestFullTmpfsRepublish(t *testing.T) {
	harness.RequireRoot(t)
	e := newEnv(t, nil) // the driver's own mounter (mount(2)), as it ships
	e.classes.set(spcOf(badCase{Class: &classSpec{Provider: "evil"}}))
	vol := csiclient.Volume{
		TargetPath: filepath.Join(e.root, "pods", "full", "volumes", "secrets"),
		Pod:        csiclient.Pod{Namespace: caseNamespace, Name: casePod, UID: casePodUID, ServiceAccount: caseSA},
		Class:      "c",
	}
	mountSmallTmpfs(t, vol.TargetPath)
	ctx := context.Background()
	e.evil.set(&answerSpec{Version: "1", Files: []answerFile{{Path: "a", Contents: "old-value-", Size: 40 << 10}}})
	if err := e.csi.Publish(ctx, vol); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	before := readTop(t, vol.TargetPath)

	e.evil.set(&answerSpec{Version: "2", Files: []answerFile{{Path: "a", Contents: "new-value-", Size: 40 << 10}, {Path: "huge", Contents: "new-value-", Size: 400 << 10}}})
	err := e.csi.Publish(ctx, vol)
	if err == nil {
		t.Fatal("a rotation larger than the tmpfs succeeded")
	}
	msg := status.Convert(err).Message()
	t.Logf("%s: %s", status.Code(err), msg)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("code %s, want ResourceExhausted", status.Code(err))
	}
	for _, want := range []string{vol.Handle(), `"huge"`, "no space left on device"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message does not name %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "value-") {
		t.Errorf("message quotes file content: %s", msg)
	}
	after := readTop(t, vol.TargetPath)
	if len(after) != 1 || after["a"] != before["a"] {
		t.Errorf("mounted files changed by the failed rotation: %v", keys(after))
	}
	// Unpublish unmounts the target (the small tmpfs) and removes it.
	if err := e.csi.Unpublish(ctx, vol); err != nil {
		t.Fatalf("unpublish: %v", err)
	}
}
