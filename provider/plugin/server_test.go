package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/secretmount/secretmount/test/harness"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// documents are the fake AWS backend's secrets, by object name.
var documents = map[string]string{
	"prod/cnpg/postgres-credentials": `{"username":"app","password":"s3cr3t-Pw"}`,
	"prod/cnpg/s3-credentials":       `{"accessKeyId":"AKIA1","secretAccessKey":"sk/+1"}`,
}

// fakeBackend serves documents, or fails with err, and counts calls.
type fakeBackend struct {
	err   error
	block bool
	mu    sync.Mutex
	calls int
	ids   []provider.Identity
}

func (f *fakeBackend) Fetch(ctx context.Context, plan *providerclass.Plan, id provider.Identity) ([]providerclass.ObjectContent, error) {
	f.mu.Lock()
	f.calls++
	f.ids = append(f.ids, id)
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, fmt.Errorf("object %s: %w", plan.Objects[0].Name, ctx.Err())
	}
	if f.err != nil {
		return nil, fmt.Errorf("object %s: %w", plan.Objects[0].Name, f.err)
	}
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		doc, ok := documents[o.Name]
		if !ok {
			return nil, fmt.Errorf("object %s: %w", o.Name, provider.ErrNotFound)
		}
		out[i] = providerclass.ObjectContent{Bytes: []byte(doc), Version: "v-" + o.Name}
	}
	return out, nil
}

// upstreamRequest encodes a mount of spc as the upstream driver does: parameters
// overlaid with the volume context, JSON secrets and permission.
func upstreamRequest(t testing.TB, spc *secretsstorev1.SecretProviderClass, extra map[string]string) *v1alpha1.MountRequest {
	t.Helper()
	attrs := map[string]string{}
	for k, v := range spc.Spec.Parameters {
		attrs[k] = v
	}
	for k, v := range map[string]string{
		attrClass: spc.Name, attrPodName: "pg-1", attrPodNamespace: spc.Namespace, attrPodUID: "uid-pg-1",
		attrServiceAccount: "cnpg", attrTokens: `{"sts.amazonaws.com":{"token":"jwt-token-value","expirationTimestamp":"2030-01-01T00:00:00Z"}}`,
		"csi.storage.k8s.io/ephemeral": "false",
	} {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	b, _ := json.Marshal(attrs)
	return &v1alpha1.MountRequest{Attributes: string(b), Secrets: "null", TargetPath: "/var/lib/kubelet/pods/x/volumes/y/mount", Permission: "420"}
}

func newTestServer(t testing.TB, backend provider.Provider) *Server {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("aws", backend)
	s, err := NewServer(ServerOptions{Name: "aws", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServerMountsTheGuideClass(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	backend := &fakeBackend{}
	s := newTestServer(t, backend)
	resp, err := s.Mount(context.Background(), upstreamRequest(t, spc, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	want := map[string]string{
		"prod_cnpg_postgres-credentials": documents["prod/cnpg/postgres-credentials"],
		"db-username":                    "app",
		"db-password":                    "s3cr3t-Pw",
		"prod_cnpg_s3-credentials":       documents["prod/cnpg/s3-credentials"],
		"s3-access-key":                  "AKIA1",
		"s3-secret-key":                  "sk/+1",
	}
	if len(resp.GetFiles()) != len(want) {
		t.Fatalf("files = %d, want %d", len(resp.GetFiles()), len(want))
	}
	for _, f := range resp.GetFiles() {
		if w, ok := want[f.GetPath()]; !ok || string(f.GetContents()) != w || f.GetMode() != 0o644 {
			t.Errorf("file %s mode %o: unexpected content or mode", f.GetPath(), f.GetMode())
		}
	}
	versions := map[string]string{}
	for _, v := range resp.GetObjectVersion() {
		versions[v.GetId()] = v.GetVersion()
	}
	if versions["prod_cnpg_postgres-credentials"] != "v-prod/cnpg/postgres-credentials" || len(versions) != 2 {
		t.Errorf("object versions = %v", versions)
	}
	id := backend.ids[0]
	if id.Namespace != "cnpg-system" || id.ServiceAccount != "cnpg" || id.PodName != "pg-1" || id.PodUID != "uid-pg-1" || id.Tokens["sts.amazonaws.com"].Token != "jwt-token-value" {
		t.Errorf("identity = %+v", id)
	}
}

func TestServerPermissionIsTheDefaultMode(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	req := upstreamRequest(t, spc, nil)
	req.Permission = "384" // 0600
	resp, err := newTestServer(t, &fakeBackend{}).Mount(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range resp.GetFiles() {
		if f.GetMode() != 0o600 {
			t.Errorf("%s mode %o, want 600", f.GetPath(), f.GetMode())
		}
	}
}

func TestServerErrors(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	tests := []struct {
		name    string
		backend *fakeBackend
		edit    func(*v1alpha1.MountRequest)
		code    codes.Code
		msg     string
	}{
		{"attributes not JSON", &fakeBackend{}, func(r *v1alpha1.MountRequest) { r.Attributes = "{" }, codes.InvalidArgument, "attributes: not a JSON object"},
		{"attributes null", &fakeBackend{}, func(r *v1alpha1.MountRequest) { r.Attributes = "null" }, codes.InvalidArgument, "attributes: not a JSON object"},
		{"no namespace", &fakeBackend{}, func(r *v1alpha1.MountRequest) { r.Attributes = `{"secretProviderClass":"c"}` }, codes.InvalidArgument, "pod.namespace is missing"},
		{"secrets not JSON", &fakeBackend{}, func(r *v1alpha1.MountRequest) { r.Secrets = "[1]" }, codes.InvalidArgument, "secrets: not a JSON object"},
		{"permission not a number", &fakeBackend{}, func(r *v1alpha1.MountRequest) { r.Permission = `"0644"` }, codes.InvalidArgument, "permission"},
		{"permission with setuid", &fakeBackend{}, func(r *v1alpha1.MountRequest) { r.Permission = "2541" }, codes.InvalidArgument, "permission"},
		{"tokens not JSON", &fakeBackend{}, func(r *v1alpha1.MountRequest) {
			r.Attributes = upstreamRequest(t, spc, map[string]string{attrTokens: `{"aud":{"token":"jwt-token-value`}).Attributes
		}, codes.InvalidArgument, "is not a JSON map"},
		{"bad class parameter", &fakeBackend{}, func(r *v1alpha1.MountRequest) {
			r.Attributes = upstreamRequest(t, spc, map[string]string{"objects": "- objectName: [x"}).Attributes
		}, codes.InvalidArgument, "postgres-aws-secrets"},
		{"not found", &fakeBackend{err: provider.ErrNotFound}, nil, codes.NotFound, "prod/cnpg/postgres-credentials"},
		{"denied", &fakeBackend{err: provider.ErrPermissionDenied}, nil, codes.PermissionDenied, "cnpg-system/postgres-aws-secrets"},
		{"outage", &fakeBackend{err: provider.ErrUnavailable}, nil, codes.Unavailable, "backend unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := upstreamRequest(t, spc, nil)
			if tt.edit != nil {
				tt.edit(req)
			}
			_, err := newTestServer(t, tt.backend).Mount(context.Background(), req)
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
				t.Fatalf("status = %v %q, want %v containing %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			if strings.Contains(st.Message(), "jwt-token-value") || strings.Contains(st.Message(), "s3cr3t") {
				t.Errorf("status message leaks a credential: %q", st.Message())
			}
		})
	}
}

func TestServerDeadline(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	reg := provider.NewRegistry()
	reg.Register("aws", &fakeBackend{block: true})
	s, err := NewServer(ServerOptions{Name: "aws", Registry: reg, Timeout: 100_000_000})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Mount(context.Background(), upstreamRequest(t, spc, nil))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("status = %v, want DeadlineExceeded", err)
	}
}

func TestNewServerChecksItsBackend(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("aws", &fakeBackend{})
	withPlugins := provider.NewRegistry()
	withPlugins.SetFallback(NewClients(ClientOptions{Dirs: []string{t.TempDir()}}).Lookup)
	tests := []struct {
		opts ServerOptions
		want string
	}{
		{ServerOptions{Name: "secretmount", Registry: reg}, "has no built-in backend"},
		{ServerOptions{Name: "x/y", Registry: reg}, "must match"},
		{ServerOptions{Name: "aws"}, "no provider registry"},
		{ServerOptions{Name: "azure", Registry: withPlugins}, "itself an external provider"},
	}
	for _, tt := range tests {
		if _, err := NewServer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewServer(%+v) = %v, want %q", tt.opts.Name, err, tt.want)
		}
	}
	if _, err := NewServer(ServerOptions{Name: "secretmount", Backend: "aws", Registry: reg}); err != nil {
		t.Errorf("secretmount serving the aws backend: %v", err)
	}
}

// TestClientAgainstServer runs our client against our server on a real socket: what
// the driver would get from `secretmount provider` is what the planner renders.
func TestClientAgainstServer(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	dir := socketDir(t)
	s := newTestServer(t, &fakeBackend{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, dir) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "aws.sock")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	clients := NewClients(ClientOptions{Dirs: []string{dir}})
	t.Cleanup(func() { _ = clients.Close() })
	p, _ := clients.Lookup("aws")
	plan := &providerclass.Plan{Provider: "aws", Dialect: providerclass.DialectExternal, Parameters: spc.Spec.Parameters}
	var res *provider.MountResult
	var err error
	for range 50 { // the socket appears once Serve has started listening
		res, err = p.(provider.FileProvider).FetchFiles(ctx, plan, provider.Identity{Tokens: map[string]provider.Token{providerclass.AudienceSTS: {Token: "jwt-token-value"}}}, provider.MountRequest{
			Attributes: map[string]string{attrClass: spc.Name, attrPodNamespace: spc.Namespace, attrServiceAccount: "cnpg"},
		})
		if !errors.Is(err, provider.ErrUnavailable) {
			break
		}
		waitBriefly()
	}
	if err != nil {
		t.Fatalf("FetchFiles: %v", err)
	}
	direct, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: spc.Namespace, ServiceAccount: "cnpg"})
	if err != nil {
		t.Fatal(err)
	}
	contents, _ := (&fakeBackend{}).Fetch(ctx, direct, provider.Identity{})
	wantFiles, err := direct.Render(contents)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != len(wantFiles) {
		t.Fatalf("files = %d, want %d", len(res.Files), len(wantFiles))
	}
	for i := range wantFiles {
		if res.Files[i].Path != wantFiles[i].Path || res.Files[i].Mode != wantFiles[i].Mode || string(res.Files[i].Bytes) != string(wantFiles[i].Bytes) {
			t.Errorf("file %d: %s %o differs from the direct render %s %o", i, res.Files[i].Path, res.Files[i].Mode, wantFiles[i].Path, wantFiles[i].Mode)
		}
	}
}

// The upstream driver's rotation reconciler sends the class's parameters and the pod's
// fields without the class name; a drop-in provider must still answer it.
func TestServerMountWithoutClassName(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	req := upstreamRequest(t, spc, nil)
	var attrs map[string]string
	if err := json.Unmarshal([]byte(req.Attributes), &attrs); err != nil {
		t.Fatal(err)
	}
	delete(attrs, attrClass)
	b, _ := json.Marshal(attrs)
	req.Attributes = string(b)
	backend := &fakeBackend{}
	resp, err := newTestServer(t, backend).Mount(context.Background(), req)
	if err != nil {
		t.Fatalf("Mount without %s: %v", attrClass, err)
	}
	if len(resp.GetFiles()) != 6 {
		t.Errorf("%d files, want the class's 6", len(resp.GetFiles()))
	}
	if id := backend.ids[0]; id.Namespace != spc.Namespace || id.PodName != "pg-1" {
		t.Errorf("identity = %+v", id)
	}
}
