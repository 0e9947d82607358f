//go:build integration

package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	p := harness.StartProgram(t, harness.ProgramSpec{
		Name: "upstream-driver", Path: bin,
		Args: []string{"--endpoint=unix://" + endpoint,
			"--nodeid=" + nodeID,
			"--provider-volume=" + providersDir,
			"--additional-provider-volume-paths=" + filepath.Join(dir, "no-providers"),
			"--metrics-addr=127.0.0.1:0",
			"--v=4",
		},
		Env:   append(os.Environ(), "KUBECONFIG="+kubeconfig),
		Ready: harness.FileExists(endpoint), ReadyTimeout: 30 * time.Second,
	})
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
	return &upstreamDriver{node: csi.NewNodeClient(conn), log: p.Log}
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
