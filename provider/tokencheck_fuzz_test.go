package provider

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzCheckToken: whatever the token, the check never panics, never quotes the token
// in its error, and refuses only with the two kinds it documents.
func FuzzCheckToken(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln", "sts.amazonaws.com")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsidmF1bHQiXX0.c2ln", "vault")
	f.Add("opaque", "vault")
	f.Add("", "a")
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, token, audience string) {
		err := CheckToken(Identity{Tokens: map[string]Token{audience: {Token: token}}}, audience, now)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("error of no documented kind: %v", err)
		}
		if len(token) >= 8 && !strings.Contains(audience, token) && strings.Contains(err.Error(), token) {
			t.Fatalf("error quotes the token: %v", err)
		}
	})
}
