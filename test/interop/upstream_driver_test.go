//go:build integration

package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/secretmount/secretmount/test/harness"
)

// upstreamDriverPath is where hack/setup/upstream-driver.sh puts the upstream driver.
func upstreamDriverPath(t *testing.T) string {
	t.Helper()
	version := os.Getenv("UPSTREAM_DRIVER_VERSION")
	if version == "" {
		version = "v1.5.4"
	}
	p := filepath.Join(harness.CacheDir(), "secrets-store-csi-driver-"+version, "secrets-store-csi-driver")
	if _, err := os.Stat(p); err != nil {
		harness.Unavailable(t, "the upstream Secrets Store CSI Driver is not built at %s (run make setup): %v", p, err)
	}
	return p
}

// upstreamDriver is a running upstream driver and a CSI client to it.
type upstreamDriver struct {
	node csi.NodeClient
	log  string
}

// startUpstreamDriver runs the upstream driver against api with providersDir as its
// only provider folder, and stops it by PID when the test ends.
func startUpstreamDriver(t *testing.T, kubeconfig, nodeID, providersDir string) *upstreamDriver {
	t.Helper()
	bin := upstreamDriverPath(t)
	dir := t.TempDir()
	endpoint := filepath.Join(dir, "csi.sock")
	logPath := filepath.Join(dir, "upstream-driver.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--endpoint=unix://"+endpoint,
		"--nodeid="+nodeID,
		"--provider-volume="+providersDir,
		"--additional-provider-volume-paths="+filepath.Join(dir, "no-providers"),
		"--metrics-addr=127.0.0.1:0",
		"--v=4",
	)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the upstream driver: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); _ = logFile.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("upstream driver log:\n%s", tail(string(b), 80))
		}
	})

	for i := 0; ; i++ {
		if _, err := os.Stat(endpoint); err == nil {
			break
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("the upstream driver exited (%v):\n%s", err, tail(string(b), 40))
		case <-time.After(100 * time.Millisecond):
		}
		if i > 300 {
			t.Fatalf("the upstream driver did not open %s within 30s", endpoint)
		}
	}
	conn, err := grpc.NewClient("unix://"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", endpoint)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("GetPluginInfo of the upstream driver: %v", err)
	}
	t.Logf("upstream driver %s %s is up", info.GetName(), info.GetVendorVersion())
	return &upstreamDriver{node: csi.NewNodeClient(conn), log: logPath}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// kubeletMount is what kubelet knows about one CSI inline volume of a pod.
type kubeletMount struct {
	Class          string
	Namespace      string
	PodName        string
	PodUID         string
	ServiceAccount string
	Tokens         string // csi.storage.k8s.io/serviceAccount.tokens JSON
	Target         string
}

func (m kubeletMount) volumeContext() map[string]string {
	return map[string]string{
		"secretProviderClass":                      m.Class,
		"csi.storage.k8s.io/pod.name":              m.PodName,
		"csi.storage.k8s.io/pod.namespace":         m.Namespace,
		"csi.storage.k8s.io/pod.uid":               m.PodUID,
		"csi.storage.k8s.io/serviceAccount.name":   m.ServiceAccount,
		"csi.storage.k8s.io/serviceAccount.tokens": m.Tokens,
		"csi.storage.k8s.io/ephemeral":             "true",
	}
}

// publish calls NodePublishVolume as kubelet does for an inline, read-only volume.
func publish(ctx context.Context, node csi.NodeClient, m kubeletMount) error {
	_, err := node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId:   fmt.Sprintf("csi-%s", m.PodUID),
		TargetPath: m.Target,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY},
		},
		Readonly:      true,
		VolumeContext: m.volumeContext(),
	})
	return err
}

func unpublish(ctx context.Context, node csi.NodeClient, m kubeletMount) error {
	_, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: fmt.Sprintf("csi-%s", m.PodUID), TargetPath: m.Target})
	return err
}

// targetPath is a kubelet-shaped target under a temp folder, so that the upstream
// driver can read the pod UID from it; the cleanup unmounts whatever is left mounted.
func targetPath(t *testing.T, podUID string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pods", podUID, "volumes", "kubernetes.io~csi", "secrets", "mount")
	t.Cleanup(func() {
		for range 3 {
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
				return
			}
		}
	})
	return p
}
