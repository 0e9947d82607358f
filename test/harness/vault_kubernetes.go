package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

const (
	// TokenReviewerNamespace and TokenReviewerServiceAccount name the ServiceAccount, bound
	// to system:auth-delegator, whose token Vault's kubernetes auth reviews logins with.
	TokenReviewerNamespace      = "secretmount-harness"
	TokenReviewerServiceAccount = "vault-token-reviewer"
	tokenReviewerTTL            = 24 * time.Hour
)

// ConfigureKubernetesAuth enables the kubernetes auth method at mountPath ("kubernetes"
// when empty) and points it at api, so a login with a ServiceAccount token is checked by
// a real TokenReview against that API server. It is safe to call again for the same
// mount (tests sharing both servers do).
func (v *Vault) ConfigureKubernetesAuth(t testing.TB, api *APIServer, mountPath string) {
	t.Helper()
	if err := v.configureKubernetesAuth(api, mountPath); err != nil {
		t.Fatal(err)
	}
}

func (v *Vault) configureKubernetesAuth(api *APIServer, mountPath string) error {
	v.authMu.Lock()
	defer v.authMu.Unlock()
	mountPath = strings.Trim(mountPath, "/")
	if mountPath == "" {
		mountPath = "kubernetes"
	}
	if err := api.ensureServiceAccount(TokenReviewerNamespace, TokenReviewerServiceAccount); err != nil {
		return err
	}
	if err := api.bindClusterRole(TokenReviewerNamespace, TokenReviewerServiceAccount, "system:auth-delegator"); err != nil {
		return err
	}
	reviewerJWT, err := api.requestToken(TokenReviewerNamespace, TokenReviewerServiceAccount, tokenReviewerTTL, nil)
	if err != nil {
		return err
	}
	mounts, err := v.Client.Sys().ListAuth()
	if err != nil {
		return fmt.Errorf("failed to list Vault auth mounts: %w", err)
	}
	if m, ok := mounts[mountPath+"/"]; ok && m.Type != "kubernetes" {
		return fmt.Errorf("vault auth mount %s/ is of type %s, not kubernetes", mountPath, m.Type)
	} else if !ok {
		if err := v.Client.Sys().EnableAuthWithOptions(mountPath, &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
			return fmt.Errorf("failed to enable kubernetes auth at %s: %w", mountPath, err)
		}
	}
	_, err = v.Client.Logical().Write("auth/"+mountPath+"/config", map[string]any{
		"kubernetes_host":      api.Host,
		"kubernetes_ca_cert":   string(api.CA),
		"token_reviewer_jwt":   reviewerJWT,
		"disable_local_ca_jwt": true,
	})
	if err != nil {
		return fmt.Errorf("failed to configure kubernetes auth at %s: %w", mountPath, err)
	}
	return nil
}

// KubernetesRole is a role on a kubernetes auth mount: tokens of ServiceAccounts in
// Namespaces log in and get Policies. With Audience set, only tokens for that audience
// do; without it, Vault's TokenReview asks for the API server's own audience.
type KubernetesRole struct {
	Name            string
	Namespaces      []string
	ServiceAccounts []string
	Policies        []string
	Audience        string
}

// WriteKubernetesRole writes role on the kubernetes auth mount at mountPath
// ("kubernetes" when empty).
func (v *Vault) WriteKubernetesRole(t testing.TB, mountPath string, role KubernetesRole) {
	t.Helper()
	mountPath = strings.Trim(mountPath, "/")
	if mountPath == "" {
		mountPath = "kubernetes"
	}
	data := map[string]any{
		"bound_service_account_names":      role.ServiceAccounts,
		"bound_service_account_namespaces": role.Namespaces,
		"token_policies":                   role.Policies,
		"token_ttl":                        "1h",
	}
	if role.Audience != "" {
		data["audience"] = role.Audience
	}
	if _, err := v.Client.Logical().Write("auth/"+mountPath+"/role/"+role.Name, data); err != nil {
		t.Fatalf("failed to write Vault role auth/%s/role/%s: %v", mountPath, role.Name, err)
	}
}

// WritePolicy writes an ACL policy.
func (v *Vault) WritePolicy(t testing.TB, name, hcl string) {
	t.Helper()
	if err := v.Client.Sys().PutPolicy(name, hcl); err != nil {
		t.Fatalf("failed to write Vault policy %s: %v", name, err)
	}
}
