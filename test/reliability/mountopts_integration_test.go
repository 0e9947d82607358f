//go:build integration

package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// TestMountOptionsAndModes publishes through the real driver onto real tmpfs and reads
// /proc/self/mountinfo and the files' modes: the tmpfs is nosuid,nodev,noexec with a
// 0755 root, each file has exactly the mode asked for (a file without one gets the
// permission the driver sends, 0644 as upstream), whatever the process umask, and a
// volume_mount_group adds group read and the group.
func TestMountOptionsAndModes(t *testing.T) {
	harness.RequireRoot(t)
	// A restrictive umask must not change the modes the driver writes.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })

	e := newEnv(t, nil) // the driver's own mounter (mount(2)), as it ships
	e.classes.set(spcOf(badCase{Class: &classSpec{Provider: "evil"}}))
	files := []answerFile{
		{Path: "default", Contents: "v"},
		{Path: "ro-owner", Contents: "v", Mode: 0o400},
		{Path: "rw-owner", Contents: "v", Mode: 0o600},
		{Path: "group", Contents: "v", Mode: 0o640},
		{Path: "all-read", Contents: "v", Mode: 0o444},
		{Path: "exec-bits", Contents: "v", Mode: 0o755},
		{Path: "nested/deep", Contents: "v", Mode: 0o600},
	}
	want := map[string]os.FileMode{
		"default": 0o644, "ro-owner": 0o400, "rw-owner": 0o600, "group": 0o640,
		"all-read": 0o444, "exec-bits": 0o755, "nested/deep": 0o600,
	}
	e.evil.set(&answerSpec{Files: files})

	for _, tc := range []struct {
		name  string
		group string
	}{{"no mount group", ""}, {"mount group 4321", "4321"}} {
		t.Run(tc.name, func(t *testing.T) {
			vol := csiclient.Volume{
				TargetPath: filepath.Join(e.root, "pods", strings.ReplaceAll(tc.name, " ", "-"), "volumes", "secrets"),
				Pod:        csiclient.Pod{Namespace: caseNamespace, Name: casePod, UID: casePodUID, ServiceAccount: caseSA},
				Class:      "c",
				MountGroup: tc.group,
			}
			if err := os.MkdirAll(filepath.Dir(vol.TargetPath), 0o750); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := e.csi.Publish(ctx, vol); err != nil {
				t.Fatalf("publish: %v", err)
			}
			t.Cleanup(func() {
				if err := e.csi.Unpublish(ctx, vol); err != nil {
					t.Errorf("unpublish: %v", err)
				}
			})

			mounts := tmpfsMountsUnder(t, e.root)
			opts, ok := mounts[vol.TargetPath]
			if !ok {
				t.Fatalf("%s is not a tmpfs mount point (tmpfs mounts: %v)", vol.TargetPath, mounts)
			}
			perMount, super, _ := strings.Cut(opts, " ")
			for _, o := range []string{"nosuid", "nodev", "noexec"} {
				if !hasOption(perMount, o) {
					t.Errorf("tmpfs mounted with %q, lacks %s", perMount, o)
				}
			}
			if !hasOption(super, "mode=755") {
				t.Errorf("tmpfs super options %q: root mode is not 755", super)
			}
			root, err := os.Stat(vol.TargetPath)
			if err != nil {
				t.Fatal(err)
			}
			if root.Mode().Perm() != 0o755 {
				t.Errorf("target mode %#o, want 0755", root.Mode().Perm())
			}

			for name, mode := range want {
				wantGID := uint32(0)
				if tc.group != "" {
					mode |= 0o040
					wantGID = 4321
				}
				info, err := os.Stat(filepath.Join(vol.TargetPath, name))
				if err != nil {
					t.Fatal(err)
				}
				if !info.Mode().IsRegular() || info.Mode().Perm() != mode || info.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
					t.Errorf("%s: mode %s, want %s", name, info.Mode(), mode)
				}
				if gid := info.Sys().(*syscall.Stat_t).Gid; gid != wantGID {
					t.Errorf("%s: group %d, want %d", name, gid, wantGID)
				}
			}
			// noexec holds even for a file with execute bits.
			if err := syscall.Access(filepath.Join(vol.TargetPath, "exec-bits"), 1); err == nil {
				t.Errorf("exec-bits is executable on the tmpfs")
			}
		})
	}
}

func hasOption(list, opt string) bool {
	return strings.Contains(","+list+",", ","+opt+",")
}
