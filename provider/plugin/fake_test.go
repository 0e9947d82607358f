package plugin

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// wireProvider is an external provider on a real unix socket: it records each request
// and answers with mount.
type wireProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	mount func(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error)

	mu   sync.Mutex
	reqs []*v1alpha1.MountRequest
}

func (p *wireProvider) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "wire", RuntimeVersion: "1.2.3"}, nil
}

func (p *wireProvider) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	return p.mount(ctx, req)
}

func (p *wireProvider) requests() []*v1alpha1.MountRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*v1alpha1.MountRequest(nil), p.reqs...)
}

// serveWire serves srv as dir/name.sock until the test ends.
func serveWire(t *testing.T, dir, name string, srv v1alpha1.CSIDriverProviderServer) {
	t.Helper()
	lis, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
}

// socketDir is a short temporary folder: unix socket paths are limited to 108 bytes.
func socketDir(t *testing.T) string {
	t.Helper()
	return t.TempDir()
}

// waitBriefly yields between bounded retries while a server starts listening.
func waitBriefly() { time.Sleep(20 * time.Millisecond) }
