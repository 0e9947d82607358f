package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Name is the provider name the server answers as: the socket's base name and the
	// spec.provider of the classes the upstream driver sends to it.
	Name string
	// Backend is the registry name whose backend and parameter dialect serve the
	// requests; empty means Name. It lets "secretmount.sock" serve the aws dialect.
	Backend string
	// Registry holds the built-in backends.
	Registry *provider.Registry
	// Timeout bounds each Mount when the caller allows longer; zero means 30s.
	Timeout time.Duration
	// RuntimeVersion is reported by Version.
	RuntimeVersion string
}

// Server serves CSIDriverProvider for one provider name with our backends.
type Server struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	opts ServerOptions
}

var _ v1alpha1.CSIDriverProviderServer = (*Server)(nil)

// NewServer checks opts and returns a Server.
func NewServer(opts ServerOptions) (*Server, error) {
	if !ValidProviderName(opts.Name) {
		return nil, fmt.Errorf("provider name %q must match %s", opts.Name, providerNameRe)
	}
	if opts.Backend == "" {
		opts.Backend = opts.Name
	}
	if opts.Registry == nil {
		return nil, errors.New("no provider registry")
	}
	p, err := opts.Registry.Get(opts.Backend)
	if err != nil {
		return nil, fmt.Errorf("provider name %q has no built-in backend %q (set the backend to one of %v): %w", opts.Name, opts.Backend, opts.Registry.Names(), err)
	}
	if _, ok := p.(provider.FileProvider); ok {
		return nil, fmt.Errorf("backend %q is itself an external provider; the provider server only serves built-in backends", opts.Backend)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.RuntimeVersion == "" {
		opts.RuntimeVersion = "dev"
	}
	return &Server{opts: opts}, nil
}

// Version answers the upstream driver's health check.
func (s *Server) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "secretmount", RuntimeVersion: s.opts.RuntimeVersion}, nil
}

// Mount plans, fetches and renders one mount and returns its files. Errors are gRPC
// statuses whose message names the class and the field or object, never a value.
func (s *Server) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	resp, err := s.mount(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *Server) mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	in, err := decodeMount(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, provider.ErrInvalid)
	}
	spc := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: in.class},
		Spec:       secretsstorev1.SecretProviderClassSpec{Provider: secretsstorev1.Provider(s.opts.Backend), Parameters: in.params},
	}
	plan, err := providerclass.NewPlan(spc, providerclass.Mount{
		Namespace: in.namespace, PodName: in.id.PodName, PodUID: in.id.PodUID,
		ServiceAccount: in.id.ServiceAccount, DefaultMode: in.permission,
	})
	if err != nil {
		return nil, err
	}
	// The token the backend needs is checked here, where it arrives, so a missing or
	// expired one never reaches the backend: see provider.CheckToken for the codes.
	if aud := plan.TokenAudience(); aud != "" {
		if err := provider.CheckToken(in.id, aud, time.Now()); err != nil {
			return nil, fmt.Errorf("mount request: SecretProviderClass %s/%s: attribute %s: %w", in.namespace, in.class, attrTokens, err)
		}
	}
	backend, err := s.opts.Registry.Get(s.opts.Backend)
	if err != nil {
		return nil, err
	}
	contents, err := backend.Fetch(ctx, plan, in.id)
	if err != nil {
		return nil, fmt.Errorf("SecretProviderClass %s/%s: %w", in.namespace, in.class, err)
	}
	if len(contents) != len(plan.Objects) {
		return nil, fmt.Errorf("SecretProviderClass %s/%s: backend %q returned %d contents for %d objects: %w",
			in.namespace, in.class, s.opts.Backend, len(contents), len(plan.Objects), provider.ErrUnavailable)
	}
	files, err := plan.Render(contents)
	if err != nil {
		return nil, err
	}
	resp := &v1alpha1.MountResponse{ObjectVersion: make([]*v1alpha1.ObjectVersion, 0, len(plan.Objects))}
	for i, o := range plan.Objects {
		resp.ObjectVersion = append(resp.ObjectVersion, &v1alpha1.ObjectVersion{Id: objectID(o), Version: contents[i].Version})
	}
	for _, f := range files {
		resp.Files = append(resp.Files, &v1alpha1.File{Path: f.Path, Mode: int32(f.Mode.Perm()), Contents: f.Bytes})
	}
	return resp, nil
}

// objectID names an object in object_version: its file when it has one (unique within
// the plan), else its name.
func objectID(o providerclass.Object) string {
	if o.File != "" {
		return o.File
	}
	return o.Name
}

// unnamedClass stands for the class name in messages when a request does not carry it.
const unnamedClass = "(unnamed in the request)"

// mountInput is a decoded MountRequest.
type mountInput struct {
	class, namespace string
	params           map[string]string
	id               provider.Identity
	permission       os.FileMode
}

// decodeMount reads a MountRequest as the upstream driver encodes it. Messages name the
// field, never its content: attributes carry tokens and secrets carry credentials.
func decodeMount(req *v1alpha1.MountRequest) (*mountInput, error) {
	var attrs map[string]string
	if err := json.Unmarshal([]byte(req.GetAttributes()), &attrs); err != nil || attrs == nil {
		return nil, errors.New("mount request: attributes: not a JSON object of strings")
	}
	if s := req.GetSecrets(); s != "" {
		var secrets map[string]string
		if err := json.Unmarshal([]byte(s), &secrets); err != nil {
			return nil, errors.New("mount request: secrets: not a JSON object of strings")
		}
	}
	permission := providerclass.DefaultFileMode
	if p := req.GetPermission(); p != "" {
		var mode uint32
		if err := json.Unmarshal([]byte(p), &mode); err != nil || mode&^0o777 != 0 {
			return nil, fmt.Errorf("mount request: permission: %q is not a file mode (decimal, as upstream sends 420 for 0644)", p)
		}
		permission = os.FileMode(mode)
	}
	params, mount := splitAttributes(attrs)
	in := &mountInput{class: mount[attrClass], namespace: mount[attrPodNamespace], params: params, permission: permission}
	if in.class == "" {
		// The upstream driver's rotation reconciler sends the class's parameters without
		// its name (its publishes send both). Nothing is keyed by the name, only
		// messages and logs carry it, so the mount goes on under a name that says so.
		in.class = unnamedClass
	}
	if in.namespace == "" {
		return nil, fmt.Errorf("mount request: attributes: %s is missing (SecretProviderClass %s)", attrPodNamespace, in.class)
	}
	tokens, err := decodeTokens(mount[attrTokens])
	if err != nil {
		return nil, fmt.Errorf("mount request: SecretProviderClass %s/%s: %w", in.namespace, in.class, err)
	}
	in.id = provider.Identity{
		Namespace: in.namespace, ServiceAccount: mount[attrServiceAccount],
		PodName: mount[attrPodName], PodUID: mount[attrPodUID], Tokens: tokens,
	}
	return in, nil
}
