package csiclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/secretmount/secretmount/test/harness"
)

// Client talks to one CSI socket.
type Client struct {
	conn     *grpc.ClientConn
	Node     csi.NodeClient
	Identity csi.IdentityClient
}

// Dial connects to a unix socket given as a path or as unix:///path. It does not wait
// for the server; the first call does.
func Dial(endpoint string) (*Client, error) {
	path := strings.TrimPrefix(endpoint, "unix://")
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(harness.RecordGRPCErrors))
	if err != nil {
		return nil, fmt.Errorf("dial CSI socket %s: %w", path, err)
	}
	return &Client{conn: conn, Node: csi.NewNodeClient(conn), Identity: csi.NewIdentityClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Pod is what kubelet knows about the pod a volume is for.
type Pod struct {
	Namespace      string
	Name           string
	UID            string
	ServiceAccount string
}

// Token is a ServiceAccount token for one audience, as kubelet's tokenRequests gives it.
type Token struct {
	Token     string
	ExpiresAt time.Time
}

// Volume is one inline csi volume of a pod.
type Volume struct {
	// ID is the volume handle; kubelet makes "csi-<hash>" for inline volumes. Empty
	// means one derived from the pod UID and TargetPath.
	ID         string
	TargetPath string
	Pod        Pod
	// Class is the secretProviderClass volume attribute.
	Class string
	// Tokens by audience; nil sends no serviceAccount.tokens key.
	Tokens map[string]Token
	// MountGroup is the pod's fsGroup, sent as volume_mount_group ("" for none).
	MountGroup string
	// Attributes are further volume attributes of the pod spec.
	Attributes map[string]string
	// ReadWrite sends readonly=false (kubelet sends true for readOnly: true volumes).
	ReadWrite bool
}

// VolumeContext is the volume context kubelet would send for v.
func (v Volume) VolumeContext() (map[string]string, error) {
	vc := map[string]string{
		"secretProviderClass":                    v.Class,
		"csi.storage.k8s.io/pod.name":            v.Pod.Name,
		"csi.storage.k8s.io/pod.namespace":       v.Pod.Namespace,
		"csi.storage.k8s.io/pod.uid":             v.Pod.UID,
		"csi.storage.k8s.io/serviceAccount.name": v.Pod.ServiceAccount,
		"csi.storage.k8s.io/ephemeral":           "true",
	}
	for k, val := range v.Attributes {
		vc[k] = val
	}
	if v.Tokens != nil {
		type token struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp"`
		}
		out := make(map[string]token, len(v.Tokens))
		for aud, t := range v.Tokens {
			out[aud] = token{Token: t.Token, ExpirationTimestamp: t.ExpiresAt.UTC().Format(time.RFC3339)}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("encode tokens: %w", err)
		}
		vc["csi.storage.k8s.io/serviceAccount.tokens"] = string(b)
	}
	return vc, nil
}

// Handle is the volume handle sent for v: ID, or like kubelet's "csi-<sha256>" made
// from the pod UID and the target path.
func (v Volume) Handle() string {
	if v.ID != "" {
		return v.ID
	}
	sum := sha256.Sum256([]byte(v.Pod.UID + "/" + v.TargetPath))
	return "csi-" + hex.EncodeToString(sum[:])
}

// PublishRequest is the NodePublishVolume request kubelet would send for v.
func (v Volume) PublishRequest() (*csi.NodePublishVolumeRequest, error) {
	vc, err := v.VolumeContext()
	if err != nil {
		return nil, err
	}
	return &csi.NodePublishVolumeRequest{
		VolumeId:   v.Handle(),
		TargetPath: v.TargetPath,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{VolumeMountGroup: v.MountGroup}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY},
		},
		Readonly:      !v.ReadWrite,
		VolumeContext: vc,
	}, nil
}

// Publish sends NodePublishVolume for v.
func (c *Client) Publish(ctx context.Context, v Volume) error {
	req, err := v.PublishRequest()
	if err != nil {
		return err
	}
	_, err = c.Node.NodePublishVolume(ctx, req)
	return err
}

// Unpublish sends NodeUnpublishVolume for v.
func (c *Client) Unpublish(ctx context.Context, v Volume) error {
	_, err := c.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.Handle(), TargetPath: v.TargetPath})
	return err
}

// WaitReady calls Probe until the driver answers ready or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	var last error
	for {
		resp, err := c.Identity.Probe(ctx, &csi.ProbeRequest{})
		if err == nil && resp.GetReady().GetValue() {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CSI driver not ready: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
