package driver

import (
	"fmt"
	"time"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// checkTokens refuses a fetch whose plan needs a ServiceAccount token the volume context
// did not bring, or brought expired, before the backend is asked: a missing audience is
// InvalidArgument (the CSIDriver's tokenRequests must be fixed; retrying cannot help), an
// expired or other-audience token is PermissionDenied, the code the backend would give
// the same token, so the code does not depend on who noticed. External providers
// (no audience) authenticate by their own means and are not checked.
func checkTokens(plan *providerclass.Plan, id provider.Identity, now time.Time) error {
	aud := plan.TokenAudience()
	if aud == "" {
		return nil
	}
	if err := provider.CheckToken(id, aud, now); err != nil {
		return fmt.Errorf("SecretProviderClass %s: volume context %q: %w", plan.Class, AttrTokens, err)
	}
	return nil
}
