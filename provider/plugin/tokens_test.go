package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/providerclass"
	"github.com/secretmount/secretmount/test/harness"
)

// TestServerMountChecksTheNeededToken: the upstream driver forwards kubelet's tokens in
// the attributes; the one the backend needs is checked before the backend is asked.
func TestServerMountChecksTheNeededToken(t *testing.T) {
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	const sts = providerclass.AudienceSTS
	future := time.Now().Add(time.Hour)
	expiredAt := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	tokens := func(aud, token string) string {
		b, _ := json.Marshal(map[string]wireToken{aud: {Token: token, ExpirationTimestamp: future}})
		return string(b)
	}
	valid := harness.UnsignedJWT(t, map[string]any{"aud": []string{sts}, "exp": future.Unix()})
	expired := harness.UnsignedJWT(t, map[string]any{"aud": []string{sts}, "exp": expiredAt.Unix()})
	otherAud := harness.UnsignedJWT(t, map[string]any{"aud": []string{"vault"}, "exp": future.Unix()})
	tests := []struct {
		name    string
		tokens  *string // nil drops the attribute
		token   string
		code    codes.Code
		mention []string
	}{
		{"valid", ptr(tokens(sts, valid)), valid, codes.OK, nil},
		{"no tokens attribute", nil, "", codes.InvalidArgument, []string{attrTokens, `"` + sts + `"`}},
		{"empty tokens attribute", ptr(""), "", codes.InvalidArgument, []string{attrTokens, `"` + sts + `"`}},
		{"empty token", ptr(tokens(sts, "")), "", codes.InvalidArgument, []string{attrTokens, `"` + sts + `"`}},
		{"only another audience", ptr(tokens("vault", valid)), valid, codes.InvalidArgument, []string{attrTokens, `"` + sts + `"`}},
		{"expired", ptr(tokens(sts, expired)), expired, codes.PermissionDenied,
			[]string{attrTokens, `"` + sts + `"`, "expired at " + expiredAt.UTC().Format(time.RFC3339)}},
		{"issued for another audience", ptr(tokens(sts, otherAud)), otherAud, codes.PermissionDenied, []string{attrTokens, `"` + sts + `"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := upstreamRequest(t, spc, nil)
			var attrs map[string]string
			if err := json.Unmarshal([]byte(req.Attributes), &attrs); err != nil {
				t.Fatal(err)
			}
			delete(attrs, attrTokens)
			if tt.tokens != nil {
				attrs[attrTokens] = *tt.tokens
			}
			b, _ := json.Marshal(attrs)
			req.Attributes = string(b)
			backend := &fakeBackend{}
			_, err := newTestServer(t, backend).Mount(context.Background(), req)
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("code %v (%s), want %v", st.Code(), st.Message(), tt.code)
			}
			if tt.code == codes.OK {
				if backend.calls != 1 {
					t.Errorf("backend asked %d times, want 1", backend.calls)
				}
				return
			}
			for _, m := range tt.mention {
				if !strings.Contains(st.Message(), m) {
					t.Errorf("message %q does not name %s", st.Message(), m)
				}
			}
			if tt.token != "" && strings.Contains(st.Message(), tt.token) {
				t.Errorf("message quotes the token")
			}
			if backend.calls != 0 {
				t.Errorf("backend asked %d times with an unusable token", backend.calls)
			}
		})
	}
}

func ptr(s string) *string { return &s }
