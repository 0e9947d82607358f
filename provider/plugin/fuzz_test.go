package plugin

import (
	"context"
	"encoding/json"
	"github.com/secretmount/secretmount/test/harness"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// FuzzServerMount feeds the server requests as an upstream driver (or anything else that
// reaches the socket) could send: it must never panic, must answer an error with a gRPC
// status, and must never put the token of the attributes into a message.
func FuzzServerMount(f *testing.F) {
	spc := harness.FixtureClass(f, "cnpg-aws-secretproviderclass.yaml")
	good := upstreamRequest(f, spc, nil)
	f.Add(good.GetAttributes(), good.GetSecrets(), good.GetPermission())
	f.Add(`{"secretProviderClass":"c","csi.storage.k8s.io/pod.namespace":"n","objects":"- objectName: x\n  objectType: ssmparameter\n  objectAlias: ../x"}`, `{}`, `420`)
	f.Add(`{"secretProviderClass":"c","csi.storage.k8s.io/pod.namespace":"n","csi.storage.k8s.io/serviceAccount.tokens":"{\"a\":{\"token\":\"jwt-token-value\"`, `null`, `384`)
	f.Add(`[]`, `"x"`, `-1`)
	s := newTestServer(f, &fakeBackend{})
	f.Fuzz(func(t *testing.T, attributes, secrets, permission string) {
		resp, err := s.Mount(context.Background(), &v1alpha1.MountRequest{Attributes: attributes, Secrets: secrets, Permission: permission})
		if err != nil {
			st, ok := status.FromError(err)
			if !ok {
				t.Fatalf("error is not a gRPC status: %v", err)
			}
			if tok := onlyToken(attributes); tok != "" && strings.Contains(st.Message(), tok) {
				t.Fatalf("message leaks the token: %q", st.Message())
			}
			return
		}
		for _, file := range resp.GetFiles() {
			if err := checkFilePath(file.GetPath()); err != nil {
				t.Fatalf("server answered with a bad path %q: %v", file.GetPath(), err)
			}
		}
	})
}

// onlyToken returns the token carried by the tokens attribute when it is long enough to
// be recognised and appears in no other attribute (which could be echoed legitimately).
func onlyToken(attributes string) string {
	var attrs map[string]string
	if json.Unmarshal([]byte(attributes), &attrs) != nil {
		return ""
	}
	var tokens map[string]struct {
		Token string `json:"token"`
	}
	if json.Unmarshal([]byte(attrs[attrTokens]), &tokens) != nil {
		return ""
	}
	for _, tok := range tokens {
		if len(tok.Token) < 8 {
			continue
		}
		echoed := false
		for k, v := range attrs {
			if k != attrTokens && (strings.Contains(v, tok.Token) || strings.Contains(k, tok.Token)) {
				echoed = true
			}
		}
		if !echoed {
			return tok.Token
		}
	}
	return ""
}
