package sanity

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/types"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// coController stands in for the CO side csi-sanity expects a controller for. The
// driver has no controller service (its volumes are inline), so sanity's "volumes" are
// made here: CreateVolume hands back the test parameters as the volume context, which
// is what kubelet would send for a pod's inline volume. Sanity's controller suite is
// skipped (it would test this stand-in, not the driver).
type coController struct {
	csi.UnimplementedControllerServer
	next atomic.Int64
}

func (c *coController) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{}, nil
}

func (c *coController) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      fmt.Sprintf("csi-%s-%d", req.GetName(), c.next.Add(1)),
		VolumeContext: req.GetParameters(),
	}}, nil
}

func (c *coController) DeleteVolume(context.Context, *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	return &csi.DeleteVolumeResponse{}, nil
}

// coIdentity answers Identity calls on the stand-in's socket by asking the driver, since
// csi-sanity checks the Identity service on every socket it is given.
type coIdentity struct {
	csi.UnimplementedIdentityServer
	driver csi.IdentityClient
}

func (c coIdentity) GetPluginInfo(ctx context.Context, req *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return c.driver.GetPluginInfo(ctx, req)
}

func (c coIdentity) GetPluginCapabilities(ctx context.Context, req *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return c.driver.GetPluginCapabilities(ctx, req)
}

func (c coIdentity) Probe(ctx context.Context, req *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return c.driver.Probe(ctx, req)
}

// kubeletReadOnly sets readonly on NodePublishVolume as kubelet does for a volume with
// readOnly: true, which the driver requires; csi-sanity itself never sets it.
func kubeletReadOnly(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if r, ok := req.(*csi.NodePublishVolumeRequest); ok {
		r.Readonly = true
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// classes serves one SecretProviderClass.
type classes struct {
	spc *secretsstorev1.SecretProviderClass
}

func (c classes) GetClass(_ context.Context, key types.NamespacedName) (*secretsstorev1.SecretProviderClass, error) {
	if key.Namespace != c.spc.Namespace || key.Name != c.spc.Name {
		return nil, fmt.Errorf("SecretProviderClass %s: %w", key, provider.ErrNotFound)
	}
	return c.spc.DeepCopy(), nil
}

// backend returns a fixed value for every object.
type backend struct{}

func (backend) Fetch(_ context.Context, plan *providerclass.Plan, _ provider.Identity) ([]providerclass.ObjectContent, error) {
	out := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		out[i] = providerclass.ObjectContent{Bytes: []byte(`{"user":"u-` + o.Name + `"}`), Version: "1"}
	}
	return out, nil
}
