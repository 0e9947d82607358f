package aws

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

const (
	stsAudience         = providerclass.AudienceSTS
	podIdentityAudience = providerclass.AudiencePodIdentity
)

// token returns the identity's token for audience: the one kubelet sent, or, when the
// identity carries none, one from the configured TokenSource. ok is false when there
// is no token and no source to ask.
func (b *Backend) token(ctx context.Context, id provider.Identity, audience string) (provider.Token, bool, error) {
	if t, ok := id.Tokens[audience]; ok && t.Token != "" {
		return t, true, nil
	}
	if b.opts.Tokens == nil {
		return provider.Token{}, false, nil
	}
	t, err := b.opts.Tokens.Token(ctx, id, audience)
	if err != nil {
		return provider.Token{}, false, fmt.Errorf("token of ServiceAccount %s for audience %s: %w", id.Key(), audience, err)
	}
	return t, t.Token != "", nil
}

// tokenSubject reads the sub claim of a JWT without verifying it: AWS verifies the
// token; the subject only keys the credential cache and is checked against the
// identity so a token of one ServiceAccount is never used as another's.
func tokenSubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("JWT payload is not base64url")
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", fmt.Errorf("JWT payload is not a JSON object")
	}
	if claims.Sub == "" {
		return "", fmt.Errorf("JWT has no sub claim")
	}
	return claims.Sub, nil
}

// checkSubject makes sure the token belongs to the identity's ServiceAccount.
func checkSubject(id provider.Identity, subject string) error {
	if id.Namespace == "" || id.ServiceAccount == "" {
		return nil
	}
	want := "system:serviceaccount:" + id.Namespace + ":" + id.ServiceAccount
	if subject != want {
		return fmt.Errorf("token subject %q is not ServiceAccount %s", subject, id.Key())
	}
	return nil
}
