//go:build integration

package interop

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/plugin"
)

// externalProvider is a provider of test code on a real socket, speaking the upstream
// provider API; it answers every Mount with answer.
type externalProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	answer func(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error)

	mu   sync.Mutex
	last *v1alpha1.MountRequest
}

func (p *externalProvider) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	p.mu.Lock()
	p.last = req
	p.mu.Unlock()
	return p.answer(ctx, req)
}

func serveExternal(t *testing.T, dir, name string, p *externalProvider) {
	t.Helper()
	lis, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(srv, p)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// TestOurDriverThroughExternalProviders runs our driver with no built-in backend for
// three provider names, each served by a provider of test code on a real socket: one
// that answers, one that never answers, and one that returns a path escaping the
// target.
func TestOurDriverThroughExternalProviders(t *testing.T) {
	requireRoot(t)
	api := cluster(t)
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "app", nil)
	nodeID := "reverse-" + ns
	pod := createPod(t, api, ns, "app", "app", nodeID)

	providers := t.TempDir()
	good := &externalProvider{answer: func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		return &v1alpha1.MountResponse{
			ObjectVersion: []*v1alpha1.ObjectVersion{{Id: "secret/db", Version: "7"}},
			Files: []*v1alpha1.File{
				{Path: "db-password", Mode: 0o600, Contents: []byte("pa\x00ss\n")},
				{Path: "tls/tls.crt", Mode: 0o644, Contents: []byte("-----BEGIN CERTIFICATE-----\n")},
			},
		}, nil
	}}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := &externalProvider{answer: func(ctx context.Context, _ *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, status.Error(codes.Unavailable, "released")
	}}
	escape := &externalProvider{answer: func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		return &v1alpha1.MountResponse{
			ObjectVersion: []*v1alpha1.ObjectVersion{{Id: "x", Version: "1"}},
			Files:         []*v1alpha1.File{{Path: "fine", Mode: 0o644, Contents: []byte("ok")}, {Path: "../../../escaped", Mode: 0o644, Contents: []byte("bad")}},
		}, nil
	}}
	serveExternal(t, providers, "goodext", good)
	serveExternal(t, providers, "hangext", hang)
	serveExternal(t, providers, "escapeext", escape)

	for _, name := range []string{"goodext", "hangext", "escapeext", "absentext"} {
		storeClass(t, api, ns, &secretsstorev1.SecretProviderClass{
			ObjectMeta: metav1.ObjectMeta{Name: "spc-" + name},
			Spec: secretsstorev1.SecretProviderClassSpec{
				Provider:   secretsstorev1.Provider(name),
				Parameters: map[string]string{"vaultName": "kv-1", "objects": "array:\n  - |\n    objectName: db\n"},
			},
		})
	}
	clients := plugin.NewClients(plugin.ClientOptions{Dirs: []string{filepath.Join(providers, "absent"), providers}})
	t.Cleanup(func() { _ = clients.Close() })
	reg := provider.NewRegistry()
	reg.SetFallback(clients.Lookup)
	ours := startOurDriver(t, api, nodeID, reg, 2*time.Second)

	mount := func(class string) kubeletMount {
		return kubeletMount{
			Class: class, Namespace: ns, PodName: pod.Name, PodUID: string(pod.UID), ServiceAccount: "app",
			Tokens: kubeletTokens(t, api, ns, "app", "api://external"), Target: targetPath(t, string(pod.UID)),
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("answers", func(t *testing.T) {
		m := mount("spc-goodext")
		if err := publish(ctx, ours, m); err != nil {
			t.Fatalf("NodePublishVolume: %v", err)
		}
		sameMount(t, "files from the external provider", map[string]mountedFile{
			"db-password": {Mode: 0o600, Bytes: []byte("pa\x00ss\n")},
			"tls/tls.crt": {Mode: 0o644, Bytes: []byte("-----BEGIN CERTIFICATE-----\n")},
		}, readMount(t, m.Target))

		good.mu.Lock()
		req := good.last
		good.mu.Unlock()
		var attrs map[string]string
		if err := json.Unmarshal([]byte(req.GetAttributes()), &attrs); err != nil {
			t.Fatalf("attributes: %v", err)
		}
		for k, v := range map[string]string{
			"vaultName": "kv-1", "secretProviderClass": "spc-goodext",
			"csi.storage.k8s.io/pod.namespace": ns, "csi.storage.k8s.io/pod.name": pod.Name,
			"csi.storage.k8s.io/serviceAccount.name": "app", "csi.storage.k8s.io/serviceAccount.tokens": m.Tokens,
		} {
			if attrs[k] != v {
				t.Errorf("attribute %s was not sent as the upstream driver sends it", k)
			}
		}
		if req.GetTargetPath() != m.Target || req.GetPermission() != "420" {
			t.Errorf("target %q permission %q", req.GetTargetPath(), req.GetPermission())
		}
		if err := unpublish(ctx, ours, m); err != nil {
			t.Errorf("NodeUnpublishVolume: %v", err)
		}
	})

	failures := []struct {
		class string
		code  codes.Code
		words []string
	}{
		{"spc-hangext", codes.DeadlineExceeded, []string{`"hangext"`}},
		{"spc-escapeext", codes.InvalidArgument, []string{`"escapeext"`, "../../../escaped"}},
		{"spc-absentext", codes.Unavailable, []string{`"absentext"`, "absentext.sock"}},
	}
	for _, f := range failures {
		t.Run(f.class, func(t *testing.T) {
			m := mount(f.class)
			err := publish(ctx, ours, m)
			st, _ := status.FromError(err)
			if st.Code() != f.code {
				t.Fatalf("NodePublishVolume = %v, want %v", err, f.code)
			}
			for _, w := range f.words {
				if !strings.Contains(st.Message(), w) {
					t.Errorf("message %q does not name %s", st.Message(), w)
				}
			}
			if fileExists(filepath.Join(m.Target, "fine")) || fileExists(filepath.Join(m.Target, "../../../escaped")) {
				t.Errorf("a file was written")
			}
			if fileExists(m.Target) {
				if left := readMount(t, m.Target); len(left) != 0 {
					t.Errorf("failed publish left %d files", len(left))
				}
			}
		})
	}
}
