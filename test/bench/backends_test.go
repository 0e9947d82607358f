//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// identityAndFetches splits a counting proxy's take into identity exchanges (STS) and
// the other requests.
func identityAndFetches(counts map[string]int) (identity, fetch int) {
	for action, n := range counts {
		if action == "AssumeRoleWithWebIdentity" {
			identity += n
		} else {
			fetch += n
		}
	}
	return identity, fetch
}

// fakeProvider answers every Mount at once with ten 64-byte files: a backend of ~0
// latency on the upstream provider API, so a driver's own cost is what is measured.
type fakeProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	files    []*v1alpha1.File
	versions []*v1alpha1.ObjectVersion
}

func newFakeProvider() *fakeProvider {
	p := &fakeProvider{}
	for i := range 10 {
		name := fmt.Sprintf("object-%d", i)
		p.files = append(p.files, &v1alpha1.File{Path: name, Mode: 0o644, Contents: bytes.Repeat([]byte{byte('a' + i)}, 64)})
		p.versions = append(p.versions, &v1alpha1.ObjectVersion{Id: name, Version: "1"})
	}
	return p
}

func (p *fakeProvider) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "bench-fake", RuntimeVersion: "0"}, nil
}

func (p *fakeProvider) Mount(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	return &v1alpha1.MountResponse{Files: p.files, ObjectVersion: p.versions}, nil
}

// serveFake serves the fake provider as dir/<name>.sock until the test ends.
func serveFake(t *testing.T, dir, name string) {
	t.Helper()
	lis, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(srv, newFakeProvider())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}
