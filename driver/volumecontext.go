package driver

import (
	"encoding/json"
	"fmt"
	"github.com/secretmount/secretmount/driver/atomicwriter"
	"path/filepath"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/provider"
)

// Volume context keys kubelet sets for CSI inline volumes (podInfoOnMount and
// tokenRequests of the CSIDriver object), and the pod's volume attribute.
const (
	AttrClass          = "secretProviderClass"
	AttrPodName        = "csi.storage.k8s.io/pod.name"
	AttrPodNamespace   = "csi.storage.k8s.io/pod.namespace"
	AttrPodUID         = "csi.storage.k8s.io/pod.uid"
	AttrServiceAccount = "csi.storage.k8s.io/serviceAccount.name"
	AttrTokens         = "csi.storage.k8s.io/serviceAccount.tokens"
	AttrEphemeral      = "csi.storage.k8s.io/ephemeral"
)

// publishRequest is a NodePublishVolume request after validation.
type publishRequest struct {
	volumeID string
	target   string
	class    types.NamespacedName
	identity provider.Identity
	group    string
	gid      int
	// attrs and secrets are the request as kubelet sent it, for external providers.
	// They hold tokens: memory only.
	attrs   map[string]string
	secrets map[string]string
}

// invalidError is bad input in a CSI request; it maps to InvalidArgument.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// cleanAbsolute reports whether a target path is one kubelet would send. The driver
// mounts, writes and removes at that path as root, so a relative or dotted one, which
// could resolve somewhere else, is refused rather than interpreted.
func cleanAbsolute(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }

func parsePublish(req *csi.NodePublishVolumeRequest) (*publishRequest, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, invalidf("volume_id is required")
	case req.GetTargetPath() == "":
		return nil, invalidf("target_path of volume %s is required", req.GetVolumeId())
	case !cleanAbsolute(req.GetTargetPath()):
		return nil, invalidf("target_path of volume %s must be an absolute path without '.', '..' or repeated separators", req.GetVolumeId())
	case req.GetVolumeCapability() == nil:
		return nil, invalidf("volume_capability of volume %s is required", req.GetVolumeId())
	case req.GetVolumeCapability().GetBlock() != nil:
		return nil, invalidf("volume %s: block access is not supported, only mount", req.GetVolumeId())
	case !req.GetReadonly():
		return nil, invalidf("volume %s: readOnly must be true (set readOnly: true on the pod's csi volume)", req.GetVolumeId())
	}
	attrs := req.GetVolumeContext()
	pr := &publishRequest{
		volumeID: req.GetVolumeId(),
		target:   req.GetTargetPath(),
		gid:      atomicwriter.NoGroup,
		attrs:    req.GetVolumeContext(),
		secrets:  req.GetSecrets(),
		identity: provider.Identity{
			Namespace:      attrs[AttrPodNamespace],
			ServiceAccount: attrs[AttrServiceAccount],
			PodName:        attrs[AttrPodName],
			PodUID:         attrs[AttrPodUID],
		},
	}
	name := attrs[AttrClass]
	if name == "" {
		return nil, invalidf("volume %s: volume attribute %q is required", pr.volumeID, AttrClass)
	}
	for _, k := range []string{AttrPodNamespace, AttrPodName, AttrPodUID, AttrServiceAccount} {
		if attrs[k] == "" {
			return nil, invalidf("volume %s: volume context %q is missing (is podInfoOnMount set on the CSIDriver?)", pr.volumeID, k)
		}
	}
	// The class is looked up in the pod's namespace only: a pod never uses another
	// namespace's SecretProviderClass.
	pr.class = types.NamespacedName{Namespace: pr.identity.Namespace, Name: name}

	tokens, err := parseTokens(attrs[AttrTokens])
	if err != nil {
		return nil, invalidf("volume %s: volume context %q: %v", pr.volumeID, AttrTokens, err)
	}
	pr.identity.Tokens = tokens

	if m := req.GetVolumeCapability().GetMount(); m != nil && m.GetVolumeMountGroup() != "" {
		gid, err := strconv.ParseUint(m.GetVolumeMountGroup(), 10, 31)
		if err != nil {
			return nil, invalidf("volume %s: volume_mount_group %q is not a numeric group id", pr.volumeID, m.GetVolumeMountGroup())
		}
		pr.group = m.GetVolumeMountGroup()
		pr.gid = int(gid)
	}
	return pr, nil
}

// parseTokens reads kubelet's {"<audience>": {"token": "...", "expirationTimestamp": "..."}}.
// Its errors never quote the input, which holds tokens.
func parseTokens(s string) (map[string]provider.Token, error) {
	if s == "" {
		return nil, nil
	}
	var raw map[string]struct {
		Token               string `json:"token"`
		ExpirationTimestamp string `json:"expirationTimestamp"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of {audience: {token, expirationTimestamp}}")
	}
	out := make(map[string]provider.Token, len(raw))
	for aud, t := range raw {
		if t.Token == "" {
			return nil, fmt.Errorf("audience %q has no token", aud)
		}
		var exp time.Time
		if t.ExpirationTimestamp != "" {
			var err error
			if exp, err = time.Parse(time.RFC3339, t.ExpirationTimestamp); err != nil {
				return nil, fmt.Errorf("audience %q: expirationTimestamp is not an RFC 3339 time", aud)
			}
		}
		out[aud] = provider.Token{Token: t.Token, ExpiresAt: exp}
	}
	return out, nil
}
