//go:build integration

package driver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/mount-utils"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// tmpfsMountsUnder lists the tmpfs mount points under dir with their options.
func tmpfsMountsUnder(t testing.TB, dir string) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 3 && fields[2] == "tmpfs" && strings.HasPrefix(fields[1], dir+"/") {
			out[fields[1]] = fields[3]
		}
	}
	return out
}

// TestConcurrentPublishesOnTmpfs is TestConcurrentPublishes with real tmpfs mounts made
// by the driver's default mounter (mount(2), not mount(8)).
func TestConcurrentPublishesOnTmpfs(t *testing.T) {
	harness.RequireRoot(t)
	for _, onePod := range []bool{false, true} {
		t.Run(fmt.Sprintf("one pod %v", onePod), func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Mounter = nil })
			e.classes.put(awsClass("ns", "c", "a", "b"))
			e.backend.set("a", "va")
			e.backend.set("b", "vb")
			vols := make([]csiclient.Volume, 100)
			for i := range vols {
				if onePod {
					vols[i] = e.volume("ns", "c", 0)
					vols[i].TargetPath = filepath.Join(e.dir, "pods", "pod-0", "volumes", fmt.Sprintf("secrets-%d", i))
				} else {
					vols[i] = e.volume("ns", "c", i)
				}
			}
			t.Cleanup(func() {
				for p := range tmpfsMountsUnder(t, e.dir) {
					_ = mount.New("").Unmount(p)
				}
			})
			publishConcurrently(t, e.client, vols)
			mounts := tmpfsMountsUnder(t, e.dir)
			if len(mounts) != 100 {
				t.Fatalf("%d tmpfs mounts, want 100", len(mounts))
			}
			for _, v := range vols {
				opts, ok := mounts[v.TargetPath]
				if !ok {
					t.Fatalf("%s is not a tmpfs mount", v.TargetPath)
				}
				for _, want := range []string{"rw", "nosuid", "nodev", "noexec", "mode=755"} {
					if !strings.Contains(","+opts+",", ","+want+",") {
						t.Errorf("%s mounted with %s, lacks %s", v.TargetPath, opts, want)
					}
				}
				if got := readMount(t, v.TargetPath); got["a"] != "va" || got["b"] != "vb" {
					t.Fatalf("%s holds %v", v.TargetPath, got)
				}
			}
			for _, v := range vols {
				if err := e.client.Unpublish(context.Background(), v); err != nil {
					t.Fatalf("unpublish %s: %v", v.TargetPath, err)
				}
			}
			if left := tmpfsMountsUnder(t, e.dir); len(left) != 0 {
				t.Errorf("%d mounts left after unpublish", len(left))
			}
		})
	}
}

// BenchmarkPublish10ObjectsOnTmpfs is BenchmarkPublish10Objects on the real path: the
// default mounter mounts a tmpfs per publish and the volume record is saved in a state
// folder on the test's disk, as /csi/state is on a node. Only the publish is timed.
func BenchmarkPublish10ObjectsOnTmpfs(b *testing.B) {
	harness.RequireRoot(b)
	e := newEnv(b, func(o *Options) { o.Mounter = nil })
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("object-%d", i)
		e.backend.set(names[i], fmt.Sprintf(`{"username":"u%d","password":"p%d"}`, i, i))
	}
	e.classes.put(awsClass("ns", "c", names...))
	v := e.volume("ns", "c", 1)
	b.Cleanup(func() {
		for p := range tmpfsMountsUnder(b, e.dir) {
			_ = mount.New("").Unmount(p)
		}
	})
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
