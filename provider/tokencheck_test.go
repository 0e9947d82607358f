package provider

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretmount/secretmount/test/harness"
)

func TestCheckToken(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	const aud = "sts.amazonaws.com"
	future, past := now.Add(time.Hour).Unix(), now.Add(-time.Minute).Unix()
	cases := []struct {
		name    string
		tokens  map[string]Token
		want    error
		mention []string
	}{
		{"valid", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": future, "aud": []string{aud}})}}, nil, nil},
		{"aud as a string", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": future, "aud": aud})}}, nil, nil},
		{"no claims to read", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"sub": "x"})}}, nil, nil},
		{"not a JWT goes to the backend", map[string]Token{aud: {Token: "opaque-token"}}, nil, nil},
		{"payload not base64", map[string]Token{aud: {Token: "a.%%%.c"}}, nil, nil},
		{"exp of another type", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": "soon"})}}, nil, nil},
		{"exp beyond year 9999", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": 1e300})}}, nil, nil},
		{"no tokens", nil, ErrInvalid, []string{aud}},
		{"other audience only", map[string]Token{"vault": {Token: harness.UnsignedJWT(t, map[string]any{"exp": future})}}, ErrInvalid, []string{aud}},
		{"empty token", map[string]Token{aud: {Token: ""}}, ErrInvalid, []string{aud}},
		{"expired", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": past})}}, ErrPermissionDenied,
			[]string{aud, "expired at 2026-11-30T05:59:00Z", "now 2026-11-30T06:00:00Z"}},
		{"expires this second", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": now.Unix()})}}, ErrPermissionDenied, []string{aud}},
		{"fractional exp", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": float64(past) + 0.5})}}, ErrPermissionDenied, []string{aud}},
		{"issued for another audience", map[string]Token{aud: {Token: harness.UnsignedJWT(t, map[string]any{"exp": future, "aud": []string{"vault"}})}},
			ErrPermissionDenied, []string{aud, "other audience"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckToken(Identity{Namespace: "ns", ServiceAccount: "sa", Tokens: tc.tokens}, aud, now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want kind %v", err, tc.want)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			for _, tok := range tc.tokens {
				if tok.Token != "" && strings.Contains(err.Error(), tok.Token) {
					t.Errorf("error quotes the token")
				}
			}
		})
	}
}
