//go:build integration

package reliability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider/plugin"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// rotationPoll is the driver's rotation poll interval in the restart test.
const rotationPoll = 250 * time.Millisecond

// restartProvider is an external provider whose answer is one file holding the current
// generation. A hold makes Mount calls for one target (or any, "*") block until the
// caller goes away, so the test can kill the driver while a fetch is in flight.
type restartProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	mu      sync.Mutex
	gen     int
	hold    string
	entered chan string
}

func (p *restartProvider) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "restarts", RuntimeVersion: "0"}, nil
}

func (p *restartProvider) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	p.mu.Lock()
	held := p.hold != "" && (p.hold == "*" || p.hold == req.GetTargetPath())
	gen := p.gen
	p.mu.Unlock()
	if held {
		select {
		case p.entered <- req.GetTargetPath():
		default:
		}
		// Answer only once the driver is gone (its connection closes) or gives up.
		<-ctx.Done()
		return nil, ctx.Err()
	}
	version := fmt.Sprint(gen)
	return &v1alpha1.MountResponse{
		ObjectVersion: []*v1alpha1.ObjectVersion{{Id: "value", Version: version}},
		Files:         []*v1alpha1.File{{Path: "value", Mode: 0o644, Contents: []byte("generation-" + version)}},
	}, nil
}

func (p *restartProvider) set(gen int, hold string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen, p.hold = gen, hold
}

// restartDriver runs the real `secretmount driver` binary and restarts it on the same
// state folder and socket after a kill -9.
type restartDriver struct {
	bin, endpoint, kubeconfig, providers, state string
	pid                                         int
	csi                                         *csiclient.Client
}

func (d *restartDriver) start(t *testing.T) {
	t.Helper()
	// kubelet's registrar and the new driver both meet a dead socket after a crash; the
	// driver must come up on the same path.
	p := harness.StartProgram(t, harness.ProgramSpec{
		Name: "secretmount-driver", Path: d.bin, Env: os.Environ(),
		Args: []string{"driver", "--endpoint=unix://" + d.endpoint, "--node-id=node-1", "--kubeconfig=" + d.kubeconfig,
			"--provider-timeout=10s", "--enable-secret-sync=false", "--metrics-addr=0", "--provider-volume=" + d.providers,
			"--state-dir=" + d.state, "--enable-secret-rotation", "--rotation-poll-interval=" + rotationPoll.String()},
		Ready: func() error {
			c, err := net.Dial("unix", d.endpoint)
			if err != nil {
				return err
			}
			return c.Close()
		},
		ReadyTimeout: 30 * time.Second,
	})
	d.pid = p.PID
	c, err := csiclient.Dial(d.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	d.csi = c
}

// kill sends SIGKILL to the driver and waits until it is gone; the harness reaps it.
func (d *restartDriver) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(d.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 driver: %v", err)
	}
	for i := 0; ; i++ {
		if err := syscall.Kill(d.pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if i > 500 {
			t.Fatalf("driver pid %d still exists 10s after SIGKILL", d.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = d.csi.Close()
	// The dead driver leaves its socket file behind; remove it so readiness means the
	// new driver listens.
	if err := os.Remove(d.endpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestRestarts kills the driver binary with SIGKILL during a first publish and during a
// rotation refresh, restarts it on the same state folder and socket, and checks that no
// half-written folder remains, published volumes stay mounted, a republish succeeds and
// rotation reaches every volume again after kubelet's next republish.
func TestRestarts(t *testing.T) {
	harness.RequireRoot(t)
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "app", nil)
	api.ApplyManifest(t, fmt.Sprintf(`apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: restarts
  namespace: %s
spec:
  provider: restartext
  parameters:
    objects: value
`, ns))

	sockets, err := os.MkdirTemp("", "rst-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockets) })
	providers := filepath.Join(sockets, "providers")
	if err := os.Mkdir(providers, 0o750); err != nil {
		t.Fatal(err)
	}
	prov := &restartProvider{gen: 1, entered: make(chan string, 1)}
	lis, err := plugin.Listen(filepath.Join(providers, "restartext.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(srv, prov)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	root := t.TempDir()
	// Runs before t.TempDir's removal: whatever a failed run left mounted is unmounted,
	// so the temp folder can go and nothing outlives the test.
	t.Cleanup(func() {
		for mp := range tmpfsMountsUnder(t, root) {
			_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	d := &restartDriver{
		bin: harness.SecretmountBinary(t), endpoint: filepath.Join(sockets, "csi.sock"),
		kubeconfig: api.Kubeconfig, providers: providers, state: filepath.Join(root, "state"),
	}
	d.start(t)

	volume := func(i int) csiclient.Volume {
		uid := fmt.Sprintf("7d1c0a4e-0000-4000-8000-%012d", i)
		return csiclient.Volume{
			TargetPath: filepath.Join(root, "pods", uid, "volumes", "kubernetes.io~csi", "secrets", "mount"),
			Pod:        csiclient.Pod{Namespace: ns, Name: fmt.Sprintf("web-%d", i), UID: uid, ServiceAccount: "app"},
			Class:      "restarts",
		}
	}
	// publish sends NodePublishVolume with fresh tokens, as kubelet does on every
	// publish and requiresRepublish call.
	publish := func(ctx context.Context, v csiclient.Volume) error {
		v.Tokens = map[string]csiclient.Token{"api://restarts": {
			Token: api.Token(t, ns, "app", time.Hour, "api://restarts"), ExpiresAt: time.Now().Add(time.Hour),
		}}
		return d.csi.Publish(ctx, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	vols := []csiclient.Volume{volume(0), volume(1), volume(2)}
	for _, v := range vols {
		if err := os.MkdirAll(filepath.Dir(v.TargetPath), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range vols[:2] {
		if err := publish(ctx, v); err != nil {
			t.Fatalf("publish %s: %v", v.Pod.Name, err)
		}
		wantContent(t, v, "generation-1")
	}

	// 1. kill -9 while the first publish of the third volume waits on the provider.
	prov.set(1, vols[2].TargetPath)
	published := make(chan error, 1)
	go func() { published <- publish(ctx, vols[2]) }()
	waitEntered(t, ctx, prov, vols[2].TargetPath)
	d.kill(t)
	if err := <-published; err == nil {
		t.Fatalf("publish of %s succeeded though the driver was killed during it", vols[2].Pod.Name)
	}
	prov.set(1, "")
	d.start(t)
	checkVolumes(t, root, vols[:2], "generation-1")
	// kubelet retries the interrupted publish.
	if err := publish(ctx, vols[2]); err != nil {
		t.Fatalf("republish of %s after the restart: %v", vols[2].Pod.Name, err)
	}
	checkVolumes(t, root, vols, "generation-1")

	// 2. kill -9 while a rotation refresh waits on the provider.
	prov.set(1, "*")
	waitEntered(t, ctx, prov, "")
	d.kill(t)
	prov.set(1, "")
	d.start(t)
	checkVolumes(t, root, vols, "generation-1")
	// Restored volumes have no tokens; kubelet's next republish brings them.
	for _, v := range vols {
		if err := publish(ctx, v); err != nil {
			t.Fatalf("republish %s after the second restart: %v", v.Pod.Name, err)
		}
	}
	prov.set(2, "")
	// A few poll intervals suffice; the bound only keeps a broken rotation from
	// hanging the test.
	rotated, stop := context.WithTimeout(ctx, 40*rotationPoll)
	defer stop()
	for _, v := range vols {
		waitContent(t, rotated, v, "generation-2")
	}
	checkVolumes(t, root, vols, "generation-2")

	for _, v := range vols {
		if err := d.csi.Unpublish(ctx, v); err != nil {
			t.Errorf("unpublish %s: %v", v.Pod.Name, err)
		}
	}
	if left := tmpfsMountsUnder(t, root); len(left) != 0 {
		t.Errorf("mounts left after unpublishing every volume: %v", left)
	}
}

// waitEntered waits until the provider holds a Mount call for target ("" for any).
func waitEntered(t *testing.T, ctx context.Context, p *restartProvider, target string) {
	t.Helper()
	for {
		select {
		case got := <-p.entered:
			if target == "" || got == target {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the provider saw no call to hold for %q", target)
		}
	}
}

// checkVolumes checks every volume is a tmpfs mount with want as its content and no
// writer folder other than the one ..data points at.
func checkVolumes(t *testing.T, root string, vols []csiclient.Volume, want string) {
	t.Helper()
	mounts := tmpfsMountsUnder(t, root)
	for _, v := range vols {
		if _, ok := mounts[v.TargetPath]; !ok {
			t.Errorf("%s: target is no longer a tmpfs mount", v.Pod.Name)
			continue
		}
		wantContent(t, v, want)
		current, err := os.Readlink(filepath.Join(v.TargetPath, "..data"))
		if err != nil {
			t.Errorf("%s: %v", v.Pod.Name, err)
			continue
		}
		entries, err := os.ReadDir(v.TargetPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "..") && e.Name() != "..data" && e.Name() != current {
				t.Errorf("%s: leftover writer entry %s (..data -> %s)", v.Pod.Name, e.Name(), current)
			}
		}
	}
}

func wantContent(t *testing.T, v csiclient.Volume, want string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(v.TargetPath, "value"))
	if err != nil {
		t.Errorf("%s: %v", v.Pod.Name, err)
		return
	}
	if string(got) != want {
		t.Errorf("%s: content %q, want %q", v.Pod.Name, got, want)
	}
}

// waitContent waits, bounded by ctx, until rotation has written want into v.
func waitContent(t *testing.T, ctx context.Context, v csiclient.Volume, want string) {
	t.Helper()
	for {
		got, err := os.ReadFile(filepath.Join(v.TargetPath, "value"))
		if err == nil && string(got) == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: rotation did not deliver %q (content %q, err %v)", v.Pod.Name, want, got, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
