package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

func externalPlan() *providerclass.Plan {
	return &providerclass.Plan{
		Provider:   "ext",
		Dialect:    providerclass.DialectExternal,
		Parameters: map[string]string{"keyvaultName": "kv1", "objects": "array:\n- |\n  objectName: a\n"},
	}
}

func volumeContext() map[string]string {
	return map[string]string{
		attrClass:                      "spc1",
		attrPodName:                    "pod1",
		attrPodNamespace:               "ns1",
		attrPodUID:                     "uid-1",
		attrServiceAccount:             "sa1",
		"csi.storage.k8s.io/ephemeral": "false",
	}
}

func answer(files ...*v1alpha1.File) func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	return func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		return &v1alpha1.MountResponse{ObjectVersion: []*v1alpha1.ObjectVersion{{Id: "a", Version: "v1"}}, Files: files}, nil
	}
}

func TestFetchFilesSendsWhatUpstreamSends(t *testing.T) {
	dir := socketDir(t)
	wp := &wireProvider{mount: answer(&v1alpha1.File{Path: "a", Mode: 0o640, Contents: []byte("A\x00b")}, &v1alpha1.File{Path: "sub/b", Mode: 0o600, Contents: []byte("B")})}
	serveWire(t, dir, "ext", wp)
	clients := NewClients(ClientOptions{Dirs: []string{filepath.Join(dir, "absent"), dir}})
	t.Cleanup(func() { _ = clients.Close() })
	p, ok := clients.Lookup("ext")
	if !ok {
		t.Fatal("lookup of a valid name failed")
	}
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	id := provider.Identity{Namespace: "ns1", ServiceAccount: "sa1", PodName: "pod1", PodUID: "uid-1",
		Tokens: map[string]provider.Token{"api://x": {Token: "tok", ExpiresAt: expires}}}
	res, err := p.(provider.FileProvider).FetchFiles(context.Background(), externalPlan(), id, provider.MountRequest{
		Attributes: volumeContext(), TargetPath: "/target", CurrentVersions: map[string]string{"b": "2", "a": "1"},
	})
	if err != nil {
		t.Fatalf("FetchFiles: %v", err)
	}
	want := []providerclass.File{{Path: "a", Mode: 0o640, Bytes: []byte("A\x00b")}, {Path: "sub/b", Mode: 0o600, Bytes: []byte("B")}}
	if len(res.Files) != len(want) {
		t.Fatalf("files = %d, want %d", len(res.Files), len(want))
	}
	for i := range want {
		if res.Files[i].Path != want[i].Path || res.Files[i].Mode != want[i].Mode || string(res.Files[i].Bytes) != string(want[i].Bytes) {
			t.Errorf("file %d = %s %o %q, want %s %o %q", i, res.Files[i].Path, res.Files[i].Mode, res.Files[i].Bytes, want[i].Path, want[i].Mode, want[i].Bytes)
		}
	}
	if res.Versions["a"] != "v1" {
		t.Errorf("versions = %v", res.Versions)
	}

	reqs := wp.requests()
	if len(reqs) != 1 {
		t.Fatalf("provider saw %d requests", len(reqs))
	}
	req := reqs[0]
	var attrs map[string]string
	if err := json.Unmarshal([]byte(req.GetAttributes()), &attrs); err != nil {
		t.Fatalf("attributes are not a JSON map: %v", err)
	}
	for k, v := range externalPlan().Parameters {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want the class parameter %q", k, attrs[k], v)
		}
	}
	for k, v := range volumeContext() {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want the volume context's %q", k, attrs[k], v)
		}
	}
	var tokens map[string]struct {
		Token               string    `json:"token"`
		ExpirationTimestamp time.Time `json:"expirationTimestamp"`
	}
	if err := json.Unmarshal([]byte(attrs[attrTokens]), &tokens); err != nil || tokens["api://x"].Token != "tok" || !tokens["api://x"].ExpirationTimestamp.Equal(expires) {
		t.Errorf("tokens attribute does not carry the identity's token (err %v)", err)
	}
	// The upstream driver marshals a nil secrets map and os.FileMode(0644).
	if req.GetSecrets() != "null" || req.GetPermission() != "420" || req.GetTargetPath() != "/target" {
		t.Errorf("secrets %q permission %q target %q, want null 420 /target", req.GetSecrets(), req.GetPermission(), req.GetTargetPath())
	}
	got := req.GetCurrentObjectVersion()
	if len(got) != 2 || got[0].GetId() != "a" || got[0].GetVersion() != "1" || got[1].GetId() != "b" {
		t.Errorf("current_object_version = %v", got)
	}
}

func TestFetchFilesKeepsKubeletTokens(t *testing.T) {
	dir := socketDir(t)
	wp := &wireProvider{mount: answer()}
	serveWire(t, dir, "ext", wp)
	clients := NewClients(ClientOptions{Dirs: []string{dir}})
	t.Cleanup(func() { _ = clients.Close() })
	p, _ := clients.Lookup("ext")
	vc := volumeContext()
	vc[attrTokens] = `{"aud":{"token":"from-kubelet","expirationTimestamp":"2030-01-01T00:00:00Z"}}`
	id := provider.Identity{Tokens: map[string]provider.Token{"aud": {Token: "other"}}}
	_, err := p.(provider.FileProvider).FetchFiles(context.Background(), externalPlan(), id, provider.MountRequest{Attributes: vc, Secrets: map[string]string{"k": "v"}, Permission: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	var attrs map[string]string
	req := wp.requests()[0]
	_ = json.Unmarshal([]byte(req.GetAttributes()), &attrs)
	if attrs[attrTokens] != vc[attrTokens] {
		t.Errorf("tokens attribute was rewritten")
	}
	if req.GetSecrets() != `{"k":"v"}` || req.GetPermission() != "384" {
		t.Errorf("secrets %q permission %q", req.GetSecrets(), req.GetPermission())
	}
}

func TestFetchFilesRejectsBadAnswers(t *testing.T) {
	// Over the wire an empty list is no list: upstream, too, refuses an answer without
	// object versions, so each answer here carries one.
	ov := []*v1alpha1.ObjectVersion{{Id: "a", Version: "1"}}
	tests := []struct {
		name    string
		resp    *v1alpha1.MountResponse
		wantErr string
	}{
		{"escaping path", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "ok"}, {Path: "../../etc/passwd"}}}, `files[1] with path "../../etc/passwd"`},
		{"absolute path", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "/etc/passwd"}}}, "files[0]"},
		{"writer's own entry", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "..data"}}}, "files[0]"},
		{"nested escape", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "a/../../b"}}}, "files[0]"},
		{"empty path", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: ""}}}, "files[0]"},
		{"NUL", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "a\x00b"}}}, "files[0]"},
		{"duplicate", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "a"}, {Path: "b"}, {Path: "a"}}}, `files[2] with path "a" twice`},
		{"setuid mode", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{{Path: "a", Mode: 0o4755}}}, "not a permission"},
		{"no object versions", &v1alpha1.MountResponse{Files: []*v1alpha1.File{{Path: "a"}}}, "without object versions"},
		{"error code", &v1alpha1.MountResponse{Error: &v1alpha1.Error{Code: "AccessDenied"}}, `error code "AccessDenied"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := socketDir(t)
			serveWire(t, dir, "ext", &wireProvider{mount: func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) { return tt.resp, nil }})
			clients := NewClients(ClientOptions{Dirs: []string{dir}})
			t.Cleanup(func() { _ = clients.Close() })
			p, _ := clients.Lookup("ext")
			res, err := p.(provider.FileProvider).FetchFiles(context.Background(), externalPlan(), provider.Identity{}, provider.MountRequest{Attributes: volumeContext()})
			if err == nil {
				t.Fatalf("accepted: %+v", res)
			}
			if res != nil {
				t.Errorf("returned files with an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `provider "ext"`) {
				t.Errorf("error %q does not name the provider and %q", err, tt.wantErr)
			}
		})
	}
}

func TestFetchFilesMapsProviderStatus(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.InvalidArgument, provider.ErrInvalid},
		{codes.NotFound, provider.ErrNotFound},
		{codes.PermissionDenied, provider.ErrPermissionDenied},
		{codes.Unauthenticated, provider.ErrPermissionDenied},
		{codes.Unavailable, provider.ErrUnavailable},
		{codes.Internal, provider.ErrUnavailable},
		{codes.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			dir := socketDir(t)
			serveWire(t, dir, "ext", &wireProvider{mount: func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
				return nil, status.Error(tt.code, "object a: it went wrong")
			}})
			clients := NewClients(ClientOptions{Dirs: []string{dir}})
			t.Cleanup(func() { _ = clients.Close() })
			p, _ := clients.Lookup("ext")
			_, err := p.(provider.FileProvider).FetchFiles(context.Background(), externalPlan(), provider.Identity{}, provider.MountRequest{Attributes: volumeContext()})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), `provider "ext"`) {
				t.Errorf("error %q does not name the provider", err)
			}
		})
	}
}

func TestFetchFilesHangingProviderHitsTheDeadline(t *testing.T) {
	dir := socketDir(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	serveWire(t, dir, "slow", &wireProvider{mount: func(ctx context.Context, _ *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	}})
	clients := NewClients(ClientOptions{Dirs: []string{dir}})
	t.Cleanup(func() { _ = clients.Close() })
	p, _ := clients.Lookup("slow")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.(provider.FileProvider).FetchFiles(ctx, externalPlan(), provider.Identity{}, provider.MountRequest{Attributes: volumeContext()})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `provider "slow"`) {
		t.Fatalf("error = %v, want a deadline naming the provider", err)
	}
}

func TestFetchFilesMissingProviderIsUnavailable(t *testing.T) {
	dir := socketDir(t)
	// A socket file nobody listens on: a provider that crashed.
	lis, err := net.Listen("unix", filepath.Join(dir, "dead.sock"))
	if err != nil {
		t.Fatal(err)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = lis.Close()
	if _, err := os.Stat(filepath.Join(dir, "dead.sock")); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	clients := NewClients(ClientOptions{Dirs: []string{dir}})
	t.Cleanup(func() { _ = clients.Close() })
	for _, name := range []string{"absent", "dead"} {
		p, ok := clients.Lookup(name)
		if !ok {
			t.Fatalf("lookup %s failed", name)
		}
		_, err := p.(provider.FileProvider).FetchFiles(context.Background(), externalPlan(), provider.Identity{}, provider.MountRequest{Attributes: volumeContext()})
		if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), `provider "`+name+`"`) {
			t.Errorf("%s: error = %v, want Unavailable naming the provider", name, err)
		}
	}
}

func TestLookupRefusesNamesThatLeaveTheFolder(t *testing.T) {
	clients := NewClients(ClientOptions{Dirs: []string{t.TempDir()}})
	for _, name := range []string{"", "../x", "a/b", "a.b", strings.Repeat("a", 31)} {
		if _, ok := clients.Lookup(name); ok {
			t.Errorf("Lookup(%q) accepted", name)
		}
	}
	reg := provider.NewRegistry()
	reg.SetFallback(clients.Lookup)
	if _, err := reg.Get("../x"); !errors.Is(err, provider.ErrUnknownProvider) {
		t.Errorf("registry error = %v, want unknown provider", err)
	}
	if p, err := reg.Get("azure"); err != nil {
		t.Errorf("registry refused a valid external name: %v", err)
	} else if _, err := p.Fetch(context.Background(), externalPlan(), provider.Identity{}); !errors.Is(err, provider.ErrInvalid) {
		t.Errorf("Fetch on an external provider = %v, want ErrInvalid pointing at FetchFiles", err)
	}
}

func TestClientVersion(t *testing.T) {
	dir := socketDir(t)
	serveWire(t, dir, "ext", &wireProvider{})
	clients := NewClients(ClientOptions{Dirs: []string{dir}})
	t.Cleanup(func() { _ = clients.Close() })
	p, _ := clients.Lookup("ext")
	v, err := p.(*Client).Version(context.Background())
	if err != nil || v != "1.2.3" {
		t.Fatalf("Version = %q, %v", v, err)
	}
}
