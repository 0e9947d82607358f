package plugin

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/secretmount/secretmount/provider"
)

// Volume context keys kubelet sets and the upstream driver forwards in attributes.
const (
	attrClass          = "secretProviderClass"
	attrPodName        = "csi.storage.k8s.io/pod.name"
	attrPodNamespace   = "csi.storage.k8s.io/pod.namespace"
	attrPodUID         = "csi.storage.k8s.io/pod.uid"
	attrServiceAccount = "csi.storage.k8s.io/serviceAccount.name"
	attrTokens         = "csi.storage.k8s.io/serviceAccount.tokens"
)

// contextKeys are the attributes that describe the mount rather than the class; they
// are not SecretProviderClass parameters.
var contextKeys = map[string]bool{
	attrClass: true, attrPodName: true, attrPodNamespace: true, attrPodUID: true,
	attrServiceAccount: true, attrTokens: true,
	"csi.storage.k8s.io/ephemeral": true,
	"providerName":                 true,
}

// wireToken is one entry of kubelet's serviceAccount.tokens.
type wireToken struct {
	Token               string    `json:"token"`
	ExpirationTimestamp time.Time `json:"expirationTimestamp"`
}

func encodeTokens(tokens map[string]provider.Token) (string, error) {
	wire := make(map[string]wireToken, len(tokens))
	for aud, t := range tokens {
		wire[aud] = wireToken{Token: t.Token, ExpirationTimestamp: t.ExpiresAt.UTC()}
	}
	b, err := json.Marshal(wire)
	if err != nil {
		return "", fmt.Errorf("encoding service account tokens: %w", err)
	}
	return string(b), nil
}

// decodeTokens reads kubelet's serviceAccount.tokens. The error never quotes the input:
// it holds tokens.
func decodeTokens(s string) (map[string]provider.Token, error) {
	if s == "" {
		return nil, nil
	}
	var wire map[string]wireToken
	if err := json.Unmarshal([]byte(s), &wire); err != nil {
		return nil, fmt.Errorf("attribute %s is not a JSON map of audience to {token, expirationTimestamp}", attrTokens)
	}
	out := make(map[string]provider.Token, len(wire))
	for aud, t := range wire {
		out[aud] = provider.Token{Token: t.Token, ExpiresAt: t.ExpirationTimestamp}
	}
	return out, nil
}

// splitAttributes separates the class parameters from the mount's own context.
func splitAttributes(attrs map[string]string) (params, mount map[string]string) {
	params, mount = map[string]string{}, map[string]string{}
	for k, v := range attrs {
		if contextKeys[k] {
			mount[k] = v
		} else {
			params[k] = v
		}
	}
	return params, maps.Clone(mount)
}
