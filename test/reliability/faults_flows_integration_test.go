//go:build integration

package reliability

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/secretmount/secretmount/test/harness"
)

// checkRequestBounds fails t when a flow (a class of requests that belongs to one
// publish) reached the backend more often than its bound; it returns the largest count
// of each flow kind. Keys are "<kind> <id>"; kinds without a bound must not occur.
func checkRequestBounds(t *testing.T, byKey map[string]int, bounds map[string]int) map[string]int {
	t.Helper()
	most := map[string]int{}
	over := 0
	for key, n := range byKey {
		kind, _, _ := strings.Cut(key, " ")
		bound, ok := bounds[kind]
		if !ok {
			t.Errorf("%d requests of unexpected kind %q", n, key)
			continue
		}
		most[kind] = max(most[kind], n)
		if n > bound {
			over++
			if over <= 5 {
				t.Errorf("%s reached the backend %d times, bound %d", key, n, bound)
			}
		}
	}
	if over > 5 {
		t.Errorf("and %d more flows over their bound", over-5)
	}
	return most
}

// credentialRE finds the access key of a SigV4 Authorization header.
var credentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

// awsFlow names an AWS request by what ties it to one publish: STS calls by the
// session name (made from the pod's ServiceAccount), the rest by the access key STS
// gave that publish.
func awsFlow(r *http.Request, body []byte) string {
	if r.Header.Get("X-Amz-Target") == "" {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRoleWithWebIdentity" {
			return "sts " + form.Get("RoleSessionName")
		}
	}
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return "key " + m[1]
	}
	return "unsigned " + r.URL.Path
}

// vaultFlow names a Vault request by what ties it to one publish: logins by the
// ServiceAccount of their token, the rest by the Vault token that login gave.
func vaultFlow(r *http.Request, body []byte) string {
	if strings.HasSuffix(r.URL.Path, "/login") {
		var login struct {
			JWT string `json:"jwt"`
		}
		if err := json.Unmarshal(body, &login); err == nil {
			return "login " + jwtSubject(login.JWT)
		}
		return "login ?"
	}
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		return "token " + tok
	}
	return "anonymous " + r.URL.Path
}

// jwtSubject is the sub claim of a JWT, unverified ("" when it has none).
func jwtSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

// faultSummary is one line of counts for the log: faults injected by kind.
func faultSummary(p *harness.FaultProxy) string {
	f := p.Faults()
	total := 0
	for _, n := range f {
		total += n
	}
	return fmt.Sprintf("%d requests; faults: delay %d, reset %d, truncate %d, 5xx %d (injected %d)",
		total, f[harness.FaultDelay], f[harness.FaultReset], f[harness.FaultTruncate], f[harness.FaultStatus], p.Injected())
}
