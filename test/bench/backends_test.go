//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// countingProxy sits in front of moto and counts the requests moto received, by action,
// so the bench reports backend requests as the backend saw them.
type countingProxy struct {
	URL string

	mu     sync.Mutex
	counts map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		action := "other"
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			action = target[strings.Index(target, ".")+1:]
		} else if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			action = form.Get("Action")
		}
		p.mu.Lock()
		p.counts[action]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// take returns the identity exchanges and the other requests since the last take.
func (p *countingProxy) take() (identity, fetch int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for action, n := range p.counts {
		if action == "AssumeRoleWithWebIdentity" {
			identity += n
		} else {
			fetch += n
		}
	}
	p.counts = map[string]int{}
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
