package provider

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// CheckToken refuses, before any backend sees it, a token of id for audience that cannot
// work: none at all (ErrInvalid: kubelet was not asked for that audience, the CSIDriver's
// tokenRequests lack it), or a JWT whose payload says it has expired or was issued for
// other audiences (ErrPermissionDenied, the kind a backend gives the same token).
//
// The payload is read without verifying the signature: the backend verifies. A token
// whose payload cannot be read is passed on for the backend to refuse. Errors name the
// audience and the expiry time, never the token.
func CheckToken(id Identity, audience string, now time.Time) error {
	t, ok := id.Tokens[audience]
	if !ok || t.Token == "" {
		return fmt.Errorf("no token for audience %q (the CSIDriver's tokenRequests must include it): %w", audience, ErrInvalid)
	}
	claims, ok := readClaims(t.Token)
	if !ok {
		return nil
	}
	if exp, ok := claims.expiry(); ok && !exp.After(now) {
		return fmt.Errorf("token for audience %q expired at %s (now %s): %w", audience,
			exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrPermissionDenied)
	}
	if auds, ok := claims.audiences(); ok && !slices.Contains(auds, audience) {
		return fmt.Errorf("token sent for audience %q was issued for %d other audience(s): %w", audience, len(auds), ErrPermissionDenied)
	}
	return nil
}

// jwtClaims are the registered claims CheckToken reads, kept raw so a claim of an
// unexpected type is ignored rather than refused.
type jwtClaims struct {
	Exp json.RawMessage `json:"exp"`
	Aud json.RawMessage `json:"aud"`
}

// readClaims decodes the payload of a compact JWT (header.payload.signature).
func readClaims(token string) (jwtClaims, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtClaims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return jwtClaims{}, false
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return jwtClaims{}, false
	}
	return c, true
}

// expiry is the exp claim (NumericDate: seconds since the epoch, possibly fractional).
func (c jwtClaims) expiry() (time.Time, bool) {
	var exp float64
	if len(c.Exp) == 0 || json.Unmarshal(c.Exp, &exp) != nil || math.IsNaN(exp) {
		return time.Time{}, false
	}
	// Beyond the year 9999 (or before 0) is as good as never: no useful time to name.
	const maxUnix = 253402300799
	if exp > maxUnix || exp < 0 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(exp)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// audiences is the aud claim, a string or a list of strings.
func (c jwtClaims) audiences() ([]string, bool) {
	if len(c.Aud) == 0 {
		return nil, false
	}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(c.Aud, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}
