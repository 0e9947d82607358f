package harness

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// UnsignedJWT is a ServiceAccount-token-shaped JWT with the given payload claims and a
// dummy signature, for the checks that read a token's claims and leave verification to
// the backend that receives it.
func UnsignedJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(payload) + "." + enc([]byte("signature-bytes"))
}
