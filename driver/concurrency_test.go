package driver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/secretmount/secretmount/test/csiclient"
)

// publishConcurrently publishes vols at once and fails on any error.
func publishConcurrently(t *testing.T, c *csiclient.Client, vols []csiclient.Volume) {
	t.Helper()
	errs := make([]error, len(vols))
	var wg sync.WaitGroup
	for i, v := range vols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Publish(context.Background(), v)
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("volume %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent publishes failed", failed, len(vols))
	}
}

func TestConcurrentPublishes(t *testing.T) {
	tests := []struct {
		name string
		vols func(e *env) []csiclient.Volume
	}{
		{"100 pods", func(e *env) []csiclient.Volume {
			out := make([]csiclient.Volume, 100)
			for i := range out {
				out[i] = e.volume("ns", "c", i)
			}
			return out
		}},
		{"one pod with 100 volumes", func(e *env) []csiclient.Volume {
			out := make([]csiclient.Volume, 100)
			for i := range out {
				v := e.volume("ns", "c", 0)
				v.TargetPath = filepath.Join(e.dir, "pods", "pod-0", "volumes", fmt.Sprintf("secrets-%d", i))
				out[i] = v
			}
			return out
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.classes.put(awsClass("ns", "c", "a", "b"))
			e.backend.set("a", "va")
			e.backend.set("b", "vb")
			vols := tt.vols(e)
			publishConcurrently(t, e.client, vols)
			for _, v := range vols {
				if got := readMount(t, v.TargetPath); got["a"] != "va" || got["b"] != "vb" {
					t.Fatalf("%s holds %v", v.TargetPath, got)
				}
			}
			if n := len(e.d.Volumes()); n != 100 {
				t.Errorf("table has %d volumes, want 100", n)
			}
			if n := e.mountCount(); n != 100 {
				t.Errorf("%d mounts, want 100", n)
			}
		})
	}
}

// BenchmarkPublish10Objects measures one first publish over the CSI socket (plan, fetch
// from a fake backend, mount with the fake mounter, atomic write of 10 files, record);
// the unpublish between iterations is not timed. The target is on /dev/shm when there is
// one, a tmpfs like the driver's real mounts, so disk fsyncs do not drown the measure.
func BenchmarkPublish10Objects(b *testing.B) {
	e := newEnv(b, func(o *Options) { o.StateDir = "" })
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("object-%d", i)
		e.backend.set(names[i], fmt.Sprintf(`{"username":"u%d","password":"p%d"}`, i, i))
	}
	e.classes.put(awsClass("ns", "c", names...))
	v := e.volume("ns", "c", 1)
	if shm, err := os.MkdirTemp("/dev/shm", "secretmount-bench-"); err == nil {
		b.Cleanup(func() { _ = os.RemoveAll(shm) })
		v.TargetPath = filepath.Join(shm, "secrets")
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.client.Publish(ctx, v); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.client.Unpublish(ctx, v); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
