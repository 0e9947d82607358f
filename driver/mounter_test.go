package driver

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestSplitOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		options []string
		flags   uintptr
		data    string
	}{
		{"the driver's tmpfs", tmpfsOptions, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0755"},
		{"none", nil, 0, ""},
		{"rw and defaults are no flag", []string{"rw", "defaults", ""}, 0, ""},
		{"read-only with size", []string{"ro", "size=1m", "noatime", "mode=0700"}, unix.MS_RDONLY | unix.MS_NOATIME, "size=1m,mode=0700"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags, data := splitOptions(tc.options)
			if flags != tc.flags || data != tc.data {
				t.Errorf("splitOptions(%q) = %#x, %q; want %#x, %q", tc.options, flags, data, tc.flags, tc.data)
			}
		})
	}
}
