package driver

import (
	"context"
	"errors"
	"fmt"
	"github.com/secretmount/secretmount/driver/atomicwriter"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/provider"
)

// readMount returns name → content of the files a reader of the mount sees, following
// the top-level links as a pod would.
func readMount(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read mount: %v", err)
	}
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

func TestPublishWritesPlannedFiles(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("team-a", "db", "prod/db", "api-key"))
	e.backend.set("prod/db", `{"username":"app"}`)
	e.backend.set("api-key", "k-1")
	v := e.volume("team-a", "db", 1)
	v.MountGroup = "2000"

	if err := e.client.Publish(context.Background(), v); err != nil {
		t.Fatalf("publish: %v", err)
	}
	got := readMount(t, v.TargetPath)
	want := map[string]string{"prod_db": `{"username":"app"}`, "api-key": "k-1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	fi, err := os.Stat(filepath.Join(v.TargetPath, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644|0o040 {
		t.Errorf("mode = %v, want group-readable 0644", fi.Mode().Perm())
	}
	if n := e.mountCount(); n != 1 {
		t.Errorf("mounts = %d, want 1", n)
	}
	mp, _ := e.mounter.List()
	if len(mp) != 1 || mp[0].Type != "tmpfs" || strings.Join(mp[0].Opts, ",") != "nosuid,nodev,noexec,mode=0755" {
		t.Errorf("mount points = %+v, want one tmpfs with nosuid,nodev,noexec", mp)
	}
	vols := e.d.Volumes()
	if len(vols) != 1 || vols[0].Class.String() != "team-a/db" || vols[0].Pod.UID != "uid-1" || len(vols[0].Versions) != 2 || vols[0].MountGroup != "2000" {
		t.Errorf("table = %+v", vols)
	}
	if p, _ := e.obs.counts(); p != 1 {
		t.Errorf("observer told %d times, want 1", p)
	}
}

func TestRepublishIsIdempotentAndRewritesOnlyOnChange(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "v1")
	v := e.volume("ns", "c", 1)
	ctx := context.Background()
	if err := e.client.Publish(ctx, v); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Readlink(filepath.Join(v.TargetPath, atomicwriter.DataLink))

	if err := e.client.Publish(ctx, v); err != nil {
		t.Fatalf("second publish: %v", err)
	}
	if again, _ := os.Readlink(filepath.Join(v.TargetPath, atomicwriter.DataLink)); again != first {
		t.Errorf("unchanged republish rewrote the files (%s → %s)", first, again)
	}
	if n := e.mountCount(); n != 1 {
		t.Errorf("mounts after republish = %d, want 1", n)
	}
	if p, _ := e.obs.counts(); p != 1 {
		t.Errorf("observer told %d times after an unchanged republish, want 1", p)
	}

	e.backend.set("a", "v2")
	if err := e.client.Publish(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got := readMount(t, v.TargetPath)["a"]; got != "v2" {
		t.Errorf("after change a = %q, want v2", got)
	}
	if n := e.mountCount(); n != 1 {
		t.Errorf("mounts after changed republish = %d, want 1", n)
	}
	if p, _ := e.obs.counts(); p != 2 {
		t.Errorf("observer told %d times, want 2", p)
	}
	if _, err := os.Stat(filepath.Join(v.TargetPath, first)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old data folder %s still there: %v", first, err)
	}
}

func TestUnpublishRemovesMountAndForgets(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "v1")
	v := e.volume("ns", "c", 1)
	ctx := context.Background()
	if err := e.client.Publish(ctx, v); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second call finds nothing and still succeeds
		if err := e.client.Unpublish(ctx, v); err != nil {
			t.Fatalf("unpublish %d: %v", i, err)
		}
	}
	if _, err := os.Stat(v.TargetPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("target still exists: %v", err)
	}
	if mp, _ := e.mounter.List(); len(mp) != 0 {
		t.Errorf("mounts left: %+v", mp)
	}
	if vols := e.d.Volumes(); len(vols) != 0 {
		t.Errorf("table still has %+v", vols)
	}
	if recs, _ := os.ReadDir(filepath.Join(e.dir, "state")); len(recs) != 0 {
		t.Errorf("state records left: %d", len(recs))
	}
	if _, u := e.obs.counts(); u != 1 {
		t.Errorf("observer told of %d unpublishes, want 1", u)
	}
}

func TestPublishErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(e *env)
		request func(e *env) *csi.NodePublishVolumeRequest
		code    codes.Code
		message string
	}{
		{
			name:    "class missing",
			code:    codes.NotFound,
			message: "ns/missing",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "missing", 1)) },
		},
		{
			name:    "class of another namespace",
			setup:   func(e *env) { e.classes.put(awsClass("other", "c", "a")) },
			code:    codes.NotFound,
			message: "ns/c",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name: "invalid class",
			setup: func(e *env) {
				spc := awsClass("ns", "c", "a")
				spc.Spec.Parameters["objects"] = "- objectType: secretsmanager\n"
				e.classes.put(spc)
			},
			code:    codes.InvalidArgument,
			message: "objects[0].objectName",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name:    "object not found",
			setup:   func(e *env) { e.classes.put(awsClass("ns", "c", "nope")) },
			code:    codes.NotFound,
			message: "object nope",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name: "permission denied",
			setup: func(e *env) {
				e.classes.put(awsClass("ns", "c", "a"))
				e.backend.fail(fmt.Errorf("object a: %w", provider.ErrPermissionDenied))
			},
			code:    codes.PermissionDenied,
			message: "object a",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name: "backend down",
			setup: func(e *env) {
				e.classes.put(awsClass("ns", "c", "a"))
				e.backend.fail(fmt.Errorf("object a: %w", provider.ErrUnavailable))
			},
			code:    codes.Unavailable,
			message: "object a",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name: "unknown provider",
			setup: func(e *env) {
				spc := awsClass("ns", "c", "a")
				spc.Spec.Provider = "gcp"
				e.classes.put(spc)
			},
			code:    codes.Unavailable,
			message: `"gcp"`,
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name: "backend too slow",
			setup: func(e *env) {
				e.classes.put(awsClass("ns", "c", "a"))
				e.backend.delay = time.Hour
			},
			code:    codes.DeadlineExceeded,
			message: "ns/c",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "c", 1)) },
		},
		{
			name: "not read-only",
			code: codes.InvalidArgument, message: "readOnly",
			request: func(e *env) *csi.NodePublishVolumeRequest {
				v := e.volume("ns", "c", 1)
				v.ReadWrite = true
				return e.req(t, v)
			},
		},
		{
			name: "no class attribute",
			code: codes.InvalidArgument, message: "secretProviderClass",
			request: func(e *env) *csi.NodePublishVolumeRequest { return e.req(t, e.volume("ns", "", 1)) },
		},
		{
			name: "bad tokens", code: codes.InvalidArgument, message: "serviceAccount.tokens",
			request: func(e *env) *csi.NodePublishVolumeRequest {
				r := e.req(t, e.volume("ns", "c", 1))
				r.VolumeContext[AttrTokens] = `{"aud": "secret-token-value"`
				return r
			},
		},
		{
			name: "bad mount group", code: codes.InvalidArgument, message: "volume_mount_group",
			request: func(e *env) *csi.NodePublishVolumeRequest {
				v := e.volume("ns", "c", 1)
				v.MountGroup = "wheel"
				return e.req(t, v)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *Options) { o.ProviderTimeout = 200 * time.Millisecond })
			e.backend.set("a", "secret-value-a")
			if tt.setup != nil {
				tt.setup(e)
			}
			req := tt.request(e)
			_, err := e.client.Node.NodePublishVolume(context.Background(), req)
			if status.Code(err) != tt.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tt.code)
			}
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, tt.message) {
				t.Errorf("message %q does not name %q", msg, tt.message)
			}
			for _, secret := range []string{"secret-value-a", "token-of-pod", "secret-token-value"} {
				if strings.Contains(msg, secret) {
					t.Errorf("message %q reveals %q", msg, secret)
				}
			}
			if _, err := os.Stat(req.TargetPath); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed publish left the target behind: %v", err)
			}
			if mp, _ := e.mounter.List(); len(mp) != 0 {
				t.Errorf("failed publish left mounts: %+v", mp)
			}
			if len(e.d.Volumes()) != 0 {
				t.Errorf("failed publish recorded a volume")
			}
		})
	}
}

func (e *env) req(t *testing.T, v interface {
	PublishRequest() (*csi.NodePublishVolumeRequest, error)
}) *csi.NodePublishVolumeRequest {
	t.Helper()
	r, err := v.PublishRequest()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPublishWriteFailureLeavesNoMount(t *testing.T) {
	e := newEnv(t, nil)
	e.classes.put(awsClass("ns", "c", "a"))
	e.backend.set("a", "v1")
	v := e.volume("ns", "c", 1)
	// A file where the writer wants its data folder makes the write fail after the mount.
	if err := os.MkdirAll(v.TargetPath, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.TargetPath, "a"), []byte("foreign"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := e.client.Publish(context.Background(), v)
	if status.Code(err) != codes.Internal {
		t.Fatalf("code = %v (%v), want Internal", status.Code(err), err)
	}
	if mp, _ := e.mounter.List(); len(mp) != 0 {
		t.Errorf("failed publish left mounts: %+v", mp)
	}
	if got := readMount(t, v.TargetPath); len(got) != 1 || got["a"] != "foreign" {
		t.Errorf("target content = %v, want only the foreign file untouched", got)
	}
	if entries, _ := os.ReadDir(v.TargetPath); len(entries) != 1 {
		t.Errorf("failed publish left %d entries, want 1", len(entries))
	}
}

func TestNodeInfoAndCapabilities(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DriverName = "secrets.example.com" })
	ctx := context.Background()
	info, err := e.client.Identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "secrets.example.com" {
		t.Errorf("plugin info = %v, %v", info, err)
	}
	ni, err := e.client.Node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil || ni.GetNodeId() != "node-1" {
		t.Errorf("node info = %v, %v", ni, err)
	}
	caps, err := e.client.Node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil || len(caps.GetCapabilities()) != 1 || caps.GetCapabilities()[0].GetRpc().GetType() != csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP {
		t.Errorf("capabilities = %v, %v", caps, err)
	}
	if _, err := e.client.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("unpublish without target: %v", err)
	}
}

func TestDefaultDriverName(t *testing.T) {
	e := newEnv(t, nil)
	info, err := e.client.Identity.GetPluginInfo(context.Background(), &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "secrets-store.csi.k8s.io" {
		t.Errorf("plugin info = %v, %v", info, err)
	}
}
