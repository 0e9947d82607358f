package csiclient

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPublishRequestIsKubeletShaped(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	v := Volume{
		TargetPath: "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount",
		Pod:        Pod{Namespace: "ns", Name: "p", UID: "u1", ServiceAccount: "sa"},
		Class:      "db",
		Tokens:     map[string]Token{"vault": {Token: "t", ExpiresAt: exp}},
		MountGroup: "26",
		Attributes: map[string]string{"extra": "x"},
	}
	req, err := v.PublishRequest()
	if err != nil {
		t.Fatal(err)
	}
	vc := req.GetVolumeContext()
	for k, want := range map[string]string{
		"secretProviderClass": "db", "csi.storage.k8s.io/pod.name": "p", "csi.storage.k8s.io/pod.namespace": "ns",
		"csi.storage.k8s.io/pod.uid": "u1", "csi.storage.k8s.io/serviceAccount.name": "sa",
		"csi.storage.k8s.io/ephemeral": "true", "extra": "x",
	} {
		if vc[k] != want {
			t.Errorf("%s = %q, want %q", k, vc[k], want)
		}
	}
	var tokens map[string]map[string]string
	if err := json.Unmarshal([]byte(vc["csi.storage.k8s.io/serviceAccount.tokens"]), &tokens); err != nil {
		t.Fatal(err)
	}
	if tokens["vault"]["token"] != "t" || tokens["vault"]["expirationTimestamp"] != "2030-01-02T03:04:05Z" {
		t.Errorf("tokens = %v", tokens)
	}
	if !req.GetReadonly() || req.GetVolumeCapability().GetMount().GetVolumeMountGroup() != "26" {
		t.Errorf("readonly %v, mount group %q", req.GetReadonly(), req.GetVolumeCapability().GetMount().GetVolumeMountGroup())
	}
	if h := v.Handle(); !strings.HasPrefix(h, "csi-") || h != req.GetVolumeId() || len(h) != 4+64 {
		t.Errorf("handle %q", h)
	}
	other := v
	other.Pod.UID = "u2"
	if other.Handle() == v.Handle() {
		t.Errorf("two pods share a volume handle")
	}
	v.Tokens = nil
	if vc, _ := v.VolumeContext(); vc["csi.storage.k8s.io/serviceAccount.tokens"] != "" {
		t.Errorf("tokens key sent without tokens")
	}
}
