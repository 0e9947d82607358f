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

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/plugin"
	"github.com/secretmount/secretmount/test/harness"
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

// TestOurDriverThroughExternalProviders runs our driver, in this process and as the
// `secretmount driver` binary, with providers of test code on real sockets: one that
// answers, one that never answers, one that returns a path escaping the target, one
// that is missing, and one named vault that answers in place of the built-in Vault
// backend when that is switched off.
func TestOurDriverThroughExternalProviders(t *testing.T) {
	requireRoot(t)
	api := cluster(t)
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "app", nil)
	nodeID := "reverse-" + ns
	pod := createPod(t, api, ns, "app", "app", nodeID)

	providers := t.TempDir()
	good := func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		return &v1alpha1.MountResponse{
			ObjectVersion: []*v1alpha1.ObjectVersion{{Id: "secret/db", Version: "7"}},
			Files: []*v1alpha1.File{
				{Path: "db-password", Mode: 0o600, Contents: []byte("pa\x00ss\n")},
				{Path: "tls/tls.crt", Mode: 0o644, Contents: []byte("-----BEGIN CERTIFICATE-----\n")},
			},
		}, nil
	}
	goodFiles := map[string]mountedFile{
		"db-password": {Mode: 0o600, Bytes: []byte("pa\x00ss\n")},
		"tls/tls.crt": {Mode: 0o644, Bytes: []byte("-----BEGIN CERTIFICATE-----\n")},
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := func(ctx context.Context, _ *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, status.Error(codes.Unavailable, "released")
	}
	escape := func(context.Context, *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
		return &v1alpha1.MountResponse{
			ObjectVersion: []*v1alpha1.ObjectVersion{{Id: "x", Version: "1"}},
			Files:         []*v1alpha1.File{{Path: "fine", Mode: 0o644, Contents: []byte("ok")}, {Path: "../../../escaped", Mode: 0o644, Contents: []byte("bad")}},
		}, nil
	}
	goodExt := &externalProvider{answer: good}
	vaultExt := &externalProvider{answer: good}
	serveExternal(t, providers, "goodext", goodExt)
	serveExternal(t, providers, "vault", vaultExt)
	serveExternal(t, providers, "hangext", &externalProvider{answer: hang})
	serveExternal(t, providers, "escapeext", &externalProvider{answer: escape})

	external := map[string]string{"vaultName": "kv-1", "objects": "array:\n  - |\n    objectName: db\n"}
	for _, name := range []string{"goodext", "hangext", "escapeext", "absentext"} {
		storeClass(t, api, ns, &secretsstorev1.SecretProviderClass{
			ObjectMeta: metav1.ObjectMeta{Name: "spc-" + name},
			Spec:       secretsstorev1.SecretProviderClassSpec{Provider: secretsstorev1.Provider(name), Parameters: external},
		})
	}
	// A valid Vault class: planned in the Vault dialect, then handed as written to the
	// external provider named vault.
	vaultParams := map[string]string{"roleName": "app", "vaultAddress": "http://127.0.0.1:1", "objects": "- {objectName: db-password, secretPath: secret/data/db, secretKey: password}\n"}
	storeClass(t, api, ns, &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: "spc-vault"},
		Spec:       secretsstorev1.SecretProviderClassSpec{Provider: "vault", Parameters: vaultParams},
	})

	drivers := []struct {
		name  string
		start func(t *testing.T) csi.NodeClient
	}{
		{"in-process driver", func(t *testing.T) csi.NodeClient {
			clients := plugin.NewClients(plugin.ClientOptions{Dirs: []string{filepath.Join(providers, "absent"), providers}})
			t.Cleanup(func() { _ = clients.Close() })
			reg := provider.NewRegistry()
			reg.SetFallback(clients.Lookup)
			return startOurDriver(t, api, nodeID, reg, 2*time.Second)
		}},
		{"secretmount driver binary", func(t *testing.T) csi.NodeClient {
			endpoint := filepath.Join(t.TempDir(), "csi.sock")
			startSecretmount(t, harness.SecretmountBinary(t), endpoint, "driver", "--endpoint=unix://"+endpoint, "--node-id="+nodeID,
				"--kubeconfig="+api.Kubeconfig, "--provider-timeout=2s", "--enable-secret-sync=false", "--metrics-addr=0",
				"--provider-volume="+filepath.Join(providers, "absent")+","+providers, "--disable-builtin-provider=vault")
			return csi.NewNodeClient(dialUnix(t, endpoint))
		}},
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			ours := d.start(t)
			mount := func(class string) kubeletMount {
				return kubeletMount{
					Class: class, Namespace: ns, PodName: pod.Name, PodUID: string(pod.UID), ServiceAccount: "app",
					Tokens: kubeletTokens(t, api, ns, "app", "api://external"), Target: targetPath(t, string(pod.UID)),
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			answers := []struct {
				class  string
				ext    *externalProvider
				params map[string]string
			}{{"spc-goodext", goodExt, external}}
			if d.name == "secretmount driver binary" {
				answers = append(answers, struct {
					class  string
					ext    *externalProvider
					params map[string]string
				}{"spc-vault", vaultExt, vaultParams})
			}
			for _, a := range answers {
				t.Run(a.class, func(t *testing.T) {
					m := mount(a.class)
					if err := publish(ctx, ours, m); err != nil {
						t.Fatalf("NodePublishVolume: %v", err)
					}
					sameMount(t, "files from the external provider", goodFiles, readMount(t, m.Target))
					a.ext.mu.Lock()
					req := a.ext.last
					a.ext.mu.Unlock()
					var attrs map[string]string
					if err := json.Unmarshal([]byte(req.GetAttributes()), &attrs); err != nil {
						t.Fatalf("attributes: %v", err)
					}
					want := map[string]string{
						"secretProviderClass": a.class, "csi.storage.k8s.io/pod.namespace": ns, "csi.storage.k8s.io/pod.name": pod.Name,
						"csi.storage.k8s.io/serviceAccount.name": "app", "csi.storage.k8s.io/serviceAccount.tokens": m.Tokens,
					}
					for k, v := range a.params {
						want[k] = v
					}
					for k, v := range want {
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
			}

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
		})
	}
}
