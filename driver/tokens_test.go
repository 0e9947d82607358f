package driver

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// TestPublishChecksTheNeededToken: a token the class's backend needs is checked where
// it arrives, before the backend is asked; a refused publish mounts nothing.
func TestPublishChecksTheNeededToken(t *testing.T) {
	const sts = "sts.amazonaws.com"
	future := time.Now().Add(time.Hour)
	expiredAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name    string
		tokens  map[string]csiclient.Token
		code    codes.Code
		mention []string
	}{
		{"valid JWT", map[string]csiclient.Token{sts: {Token: harness.UnsignedJWT(t, map[string]any{"aud": []string{sts}, "exp": future.Unix()}), ExpiresAt: future}}, codes.OK, nil},
		{"no tokens attribute", nil, codes.InvalidArgument, []string{AttrTokens, `"` + sts + `"`}},
		{"only another audience", map[string]csiclient.Token{"vault": {Token: harness.UnsignedJWT(t, map[string]any{"aud": []string{"vault"}}), ExpiresAt: future}},
			codes.InvalidArgument, []string{AttrTokens, `"` + sts + `"`}},
		{"expired JWT", map[string]csiclient.Token{sts: {Token: harness.UnsignedJWT(t, map[string]any{"aud": []string{sts}, "exp": expiredAt.Unix()}), ExpiresAt: future}},
			codes.PermissionDenied, []string{AttrTokens, `"` + sts + `"`, "expired at " + expiredAt.UTC().Format(time.RFC3339)}},
		{"JWT of another audience", map[string]csiclient.Token{sts: {Token: harness.UnsignedJWT(t, map[string]any{"aud": []string{"vault"}, "exp": future.Unix()}), ExpiresAt: future}},
			codes.PermissionDenied, []string{AttrTokens, `"` + sts + `"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			e.classes.put(awsClass("ns", "c", "a"))
			e.backend.set("a", "secret-value-a")
			v := e.volume("ns", "c", 1)
			v.Tokens = tt.tokens
			_, err := e.client.Node.NodePublishVolume(context.Background(), e.req(t, v))
			if status.Code(err) != tt.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.code)
			}
			if tt.code == codes.OK {
				if e.backend.calls.Load() != 1 {
					t.Errorf("backend asked %d times, want 1", e.backend.calls.Load())
				}
				return
			}
			msg := status.Convert(err).Message()
			for _, m := range tt.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q does not name %s", msg, m)
				}
			}
			for _, tok := range tt.tokens {
				if strings.Contains(msg, tok.Token) {
					t.Errorf("message %q quotes the token", msg)
				}
			}
			if n := e.backend.calls.Load(); n != 0 {
				t.Errorf("backend asked %d times with an unusable token", n)
			}
			if _, err := os.Stat(v.TargetPath); !os.IsNotExist(err) {
				t.Errorf("refused publish left the target: %v", err)
			}
			if e.mountCount() != 0 {
				t.Errorf("refused publish mounted")
			}
		})
	}
}
