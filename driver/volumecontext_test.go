package driver

import (
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

func TestParsePublish(t *testing.T) {
	full := func() *csi.NodePublishVolumeRequest {
		return &csi.NodePublishVolumeRequest{
			VolumeId:   "csi-1",
			TargetPath: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/s/mount",
			Readonly:   true,
			VolumeCapability: &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{
				Mount: &csi.VolumeCapability_MountVolume{VolumeMountGroup: "3000"}}},
			VolumeContext: map[string]string{
				AttrClass: "db", AttrPodName: "p", AttrPodNamespace: "ns", AttrPodUID: "u", AttrServiceAccount: "sa",
				AttrTokens: `{"vault":{"token":"t1","expirationTimestamp":"2030-01-02T03:04:05Z"},"sts.amazonaws.com":{"token":"t2"}}`,
			},
		}
	}
	pr, err := parsePublish(full())
	if err != nil {
		t.Fatalf("full request: %v", err)
	}
	if pr.class.String() != "ns/db" || pr.identity.ServiceAccount != "sa" || pr.identity.PodUID != "u" || pr.gid != 3000 {
		t.Errorf("parsed = %+v", pr)
	}
	if tok := pr.identity.Tokens["vault"]; tok.Token != "t1" || !tok.ExpiresAt.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("vault token = %+v", tok)
	}
	if len(pr.identity.Tokens) != 2 {
		t.Errorf("tokens = %d, want 2", len(pr.identity.Tokens))
	}

	tests := []struct {
		name   string
		mutate func(r *csi.NodePublishVolumeRequest)
		want   string
	}{
		{"no volume id", func(r *csi.NodePublishVolumeRequest) { r.VolumeId = "" }, "volume_id"},
		{"no target", func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "" }, "target_path"},
		{"relative target", func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "pods/p/volumes/v" }, "absolute"},
		{"dotted target", func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "/var/lib/kubelet/pods/p/../../../etc" }, "absolute"},
		{"no capability", func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability = nil }, "volume_capability"},
		{"block", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability = &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}
		}, "block"},
		{"read-write", func(r *csi.NodePublishVolumeRequest) { r.Readonly = false }, "readOnly"},
		{"no class", func(r *csi.NodePublishVolumeRequest) { delete(r.VolumeContext, AttrClass) }, AttrClass},
		{"no pod namespace", func(r *csi.NodePublishVolumeRequest) { delete(r.VolumeContext, AttrPodNamespace) }, AttrPodNamespace},
		{"no service account", func(r *csi.NodePublishVolumeRequest) { delete(r.VolumeContext, AttrServiceAccount) }, AttrServiceAccount},
		{"tokens not JSON", func(r *csi.NodePublishVolumeRequest) { r.VolumeContext[AttrTokens] = `{"a":"tok-secret"` }, AttrTokens},
		{"token empty", func(r *csi.NodePublishVolumeRequest) { r.VolumeContext[AttrTokens] = `{"a":{"token":""}}` }, `audience "a" has no token`},
		{"bad expiry", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[AttrTokens] = `{"a":{"token":"tok-secret","expirationTimestamp":"tomorrow"}}`
		}, "RFC 3339"},
		{"group not numeric", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.GetMount().VolumeMountGroup = "staff"
		}, "volume_mount_group"},
		{"group negative", func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.GetMount().VolumeMountGroup = "-1"
		}, "volume_mount_group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := full()
			tt.mutate(r)
			_, err := parsePublish(r)
			if err == nil {
				t.Fatal("accepted")
			}
			if codeOf(err).String() != "InvalidArgument" {
				t.Errorf("code = %v, want InvalidArgument", codeOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "tok-secret") {
				t.Errorf("error %q reveals the token", err)
			}
		})
	}
}
