//go:build integration

package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// tornFiles are the files of the rotated mount: each starts with the generation
// marker, and they differ in size and depth so a rewrite is not one block.
var tornFiles = []struct {
	path string
	pad  int
}{{"a", 0}, {"b", 3000}, {"c", 70000}, {"nested/d", 10}, {"nested/deeper/e", 5000}}

func generationAnswer(gen int) *answerSpec {
	a := &answerSpec{Version: strconv.Itoa(gen)}
	for _, f := range tornFiles {
		a.Files = append(a.Files, answerFile{Path: f.path, Contents: fmt.Sprintf("gen-%d\n%s", gen, bytes.Repeat([]byte{'p'}, f.pad))})
	}
	return a
}

// readCounts are what the reader saw.
type readCounts struct {
	consistent int // every file had the same marker
	vanished   int // the data folder was replaced while being read: a retry, not a mix
	torn       int // markers differed
	backwards  int // a set older than one already seen
	last       int
}

// readGeneration reads every file through one open of ..data, as a reader that wants
// a consistent set does, and returns the markers it found.
func readGeneration(target string) ([]int, error) {
	dfd, err := unix.Open(filepath.Join(target, "..data"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	out := make([]int, 0, len(tornFiles))
	for _, f := range tornFiles {
		fd, err := unix.Openat(dfd, f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		file := os.NewFile(uintptr(fd), f.path)
		buf := make([]byte, 32)
		n, err := file.Read(buf)
		_ = file.Close()
		if err != nil {
			return nil, err
		}
		line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
		gen, err := strconv.Atoi(string(bytes.TrimPrefix(line, []byte("gen-"))))
		if err != nil {
			return nil, fmt.Errorf("%s: no marker: %w", f.path, err)
		}
		out = append(out, gen)
	}
	return out, nil
}

// TestNoTornReadsDuringRotation rotates a real tmpfs mount 1000 times through the
// driver's republish while a reader checks that every set it reads carries one
// generation marker.
func TestNoTornReadsDuringRotation(t *testing.T) {
	harness.RequireRoot(t)
	const rotations = 1000
	e := newEnv(t, nil) // the driver's own mounter (mount(2)), as it ships
	e.classes.set(spcOf(badCase{Class: &classSpec{Provider: "evil"}}))
	vol := csiclient.Volume{
		TargetPath: filepath.Join(e.root, "pods", "torn", "volumes", "secrets"),
		Pod:        csiclient.Pod{Namespace: caseNamespace, Name: casePod, UID: casePodUID, ServiceAccount: caseSA},
		Class:      "c",
	}
	if err := os.MkdirAll(filepath.Dir(vol.TargetPath), 0o750); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e.evil.set(generationAnswer(0))
	if err := e.csi.Publish(ctx, vol); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	t.Cleanup(func() {
		if err := e.csi.Unpublish(ctx, vol); err != nil {
			t.Errorf("unpublish: %v", err)
		}
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var counts readCounts
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			gens, err := readGeneration(vol.TargetPath)
			if errors.Is(err, unix.ENOENT) {
				counts.vanished++
				continue
			}
			if err != nil {
				readErr = err
				return
			}
			same := true
			for _, g := range gens[1:] {
				same = same && g == gens[0]
			}
			switch {
			case !same:
				counts.torn++
			case gens[0] < counts.last:
				counts.backwards++
			default:
				counts.consistent++
				counts.last = gens[0]
			}
		}
	}()
	for gen := 1; gen <= rotations; gen++ {
		e.evil.set(generationAnswer(gen))
		if err := e.csi.Publish(ctx, vol); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("rotation %d: %v", gen, err)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("reader: %v", readErr)
	}
	t.Logf("%d rotations; reads: %d consistent, %d retried (data folder replaced mid-read), %d torn, %d backwards",
		rotations, counts.consistent, counts.vanished, counts.torn, counts.backwards)
	if counts.torn != 0 || counts.backwards != 0 {
		t.Fatalf("%d torn reads and %d reads of an older set", counts.torn, counts.backwards)
	}
	if counts.consistent == 0 {
		t.Fatal("the reader never completed a read")
	}
	gens, err := readGeneration(vol.TargetPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range gens {
		if g != rotations {
			t.Errorf("%s holds generation %d after the last rotation, want %d", tornFiles[i].path, g, rotations)
		}
	}
	// Top-level names lead into the current set and nothing else is left behind.
	entries, err := os.ReadDir(vol.TargetPath)
	if err != nil {
		t.Fatal(err)
	}
	dataDirs := 0
	for _, en := range entries {
		if en.IsDir() && len(en.Name()) > 2 && en.Name()[:2] == ".." {
			dataDirs++
		}
	}
	if dataDirs != 1 {
		t.Errorf("%d data folders left in the target, want 1", dataDirs)
	}
}
