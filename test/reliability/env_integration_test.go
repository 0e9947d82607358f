//go:build integration

package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/aws"
	"github.com/secretmount/secretmount/provider/plugin"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// classes is a ClassGetter over a map, standing in for the informer cache.
type classes struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*secretsstorev1.SecretProviderClass
}

func (c *classes) GetClass(_ context.Context, key types.NamespacedName) (*secretsstorev1.SecretProviderClass, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spc, ok := c.m[key]
	if !ok {
		// The informer cache answers a missing object with a NotFound API error.
		return nil, errNotFound(key)
	}
	return spc.DeepCopy(), nil
}

func (c *classes) set(spc *secretsstorev1.SecretProviderClass) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[types.NamespacedName]*secretsstorev1.SecretProviderClass{}
	if spc != nil {
		c.m[types.NamespacedName{Namespace: spc.Namespace, Name: spc.Name}] = spc
	}
}

// roles gives every ServiceAccount a role, so AWS cases get past the role lookup.
type roles struct{}

func (roles) RoleARN(context.Context, string, string) (string, error) {
	return "arn:aws:iam::123456789012:role/reliability", nil
}

// evil is an external provider answering each Mount with the files the current case
// sets: the provider side of the wire, as a buggy or hostile provider would answer.
type evil struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	mu     sync.Mutex
	answer *answerSpec
	calls  int
}

func (e *evil) set(a *answerSpec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answer = a
}

func (e *evil) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "evil", RuntimeVersion: "0"}, nil
}

func (e *evil) Mount(_ context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	resp := &v1alpha1.MountResponse{}
	if e.answer == nil {
		return resp, nil
	}
	if !e.answer.NoVersions {
		version := e.answer.Version
		if version == "" {
			version = "1"
		}
		resp.ObjectVersion = []*v1alpha1.ObjectVersion{{Id: "a", Version: version}}
	}
	// Like upstream providers, a file without its own mode gets the permission the
	// driver asked for.
	defaultMode := int32(0o644)
	if err := json.Unmarshal([]byte(req.GetPermission()), &defaultMode); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "permission: %v", err)
	}
	if e.answer.ErrorCode != "" {
		resp.Error = &v1alpha1.Error{Code: e.answer.ErrorCode}
	}
	for _, f := range e.answer.Files {
		b, err := f.bytes()
		if err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			mode = defaultMode
		}
		resp.Files = append(resp.Files, &v1alpha1.File{Path: f.Path, Mode: mode, Contents: b})
	}
	return resp, nil
}

// env is a real driver serving CSI on a unix socket with the real AWS and Vault
// backends (pointed at a closed loopback port, so nothing reaches a backend by
// accident) and external providers found in a socket folder.
type env struct {
	root      string // pods live under root/pods
	sockets   string
	classes   *classes
	evil      *evil
	csi       *csiclient.Client
	providers *provider.Registry
	// logs collects every line the driver and the AWS backend log, at full verbosity.
	logs *logLines
}

// logLines is a concurrency-safe log sink for leak checks.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func newEnv(t *testing.T, tune func(*driver.Options)) *env {
	t.Helper()
	sockets, err := os.MkdirTemp("", "rel-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockets) })
	e := &env{root: t.TempDir(), sockets: sockets, classes: &classes{}, evil: &evil{}, logs: &logLines{}}
	t.Cleanup(func() { harness.RecordLeakText(t, harness.LeakLogs, strings.Join(e.logs.all(), "\n")+"\n") })
	logger := funcr.New(func(prefix, args string) { e.logs.add(prefix + " " + args) }, funcr.Options{Verbosity: 10})

	closed := "http://" + closedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	awsBackend, err := aws.New(ctx, aws.Options{DefaultRegion: "us-east-1", Endpoint: closed, Roles: roles{}, MaxAttempts: 1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	vaultBackend, err := vault.New(vault.Options{DefaultAddress: closed, Keys: vault.StaticKey("reliability-key-0123456789abcdef"), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	reg := provider.NewRegistry()
	reg.Register("aws", awsBackend)
	reg.Register("vault", vaultBackend)
	clients := plugin.NewClients(plugin.ClientOptions{Dirs: []string{sockets}, Timeout: 10 * time.Second})
	t.Cleanup(func() { _ = clients.Close() })
	reg.SetFallback(clients.Lookup)
	e.providers = reg

	e.serveEvil(t)
	for _, name := range []string{"aws", "vault"} {
		srv, err := plugin.NewServer(plugin.ServerOptions{Name: name, Registry: reg, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// The provider-boundary servers get their own folder so the driver does not
		// find them in place of its built-in backends.
		serve(t, ctx, func(ctx context.Context) error { return srv.Serve(ctx, filepath.Join(sockets, "p")) })
	}

	opts := driver.Options{
		Endpoint:        filepath.Join(sockets, "csi.sock"),
		NodeID:          "node-1",
		ProviderTimeout: 10 * time.Second,
		Classes:         e.classes,
		Providers:       reg,
		Log:             logger,
	}
	if tune != nil {
		tune(&opts)
	}
	d, err := driver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ctx, d.Run)
	e.csi, err = csiclient.Dial(opts.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.csi.Close() })
	waitSocket(t, opts.Endpoint)
	waitSocket(t, filepath.Join(sockets, "p", "aws.sock"))
	waitSocket(t, filepath.Join(sockets, "p", "vault.sock"))
	return e
}

func (e *env) serveEvil(t *testing.T) {
	t.Helper()
	lis, err := plugin.Listen(filepath.Join(e.sockets, "evil.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(srv, e.evil)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// serve runs fn until the test ends and waits for it to return.
func serve(t *testing.T, ctx context.Context, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("server stopped with %v", err)
		}
	})
}

// waitSocket waits until something listens on the unix socket at path; the test's
// own deadline bounds the wait.
func waitSocket(t *testing.T, path string) {
	t.Helper()
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func errNotFound(key types.NamespacedName) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: "secrets-store.csi.x-k8s.io", Resource: "secretproviderclasses"}, key.String())
}
