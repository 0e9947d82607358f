//go:build integration

package smoke

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/secretmount/secretmount/test/harness"
)

func TestAPIServerTokenRequestAndReview(t *testing.T) {
	api := harness.SharedAPIServer(t)
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "app", map[string]string{"example.com/role": "reader"})
	token := api.Token(t, ns, "app", 15*time.Minute, "vault")

	tests := []struct {
		name      string
		token     string
		audiences []string
		wantUser  string // empty: must not authenticate
	}{
		{name: "matching audience", token: token, audiences: []string{"vault"}, wantUser: "system:serviceaccount:" + ns + ":app"},
		{name: "other audience", token: token, audiences: []string{"sts.amazonaws.com"}},
		{name: "tampered signature", token: tamper(token), audiences: []string{"vault"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			review, err := api.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
				Spec: authenticationv1.TokenReviewSpec{Token: tt.token, Audiences: tt.audiences},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("TokenReview: %v", err)
			}
			if got := review.Status.Authenticated; got != (tt.wantUser != "") {
				t.Fatalf("authenticated = %v, want %v (error %q)", got, tt.wantUser != "", review.Status.Error)
			}
			if tt.wantUser != "" && review.Status.User.Username != tt.wantUser {
				t.Errorf("username = %q, want %q", review.Status.User.Username, tt.wantUser)
			}
		})
	}

	sa, err := api.Client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ServiceAccount: %v", err)
	}
	if got := sa.Annotations["example.com/role"]; got != "reader" {
		t.Errorf("annotation example.com/role = %q, want reader", got)
	}
}

// tamper flips a character of the JWT's signature.
func tamper(jwt string) string {
	b := []byte(jwt)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestAPIServerRBACAndKubeconfig(t *testing.T) {
	api := harness.SharedAPIServer(t)
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "viewer", nil)
	api.CreateServiceAccount(t, ns, "nobody", nil)
	// Aggregated roles (view, edit, admin) stay empty without a controller manager, so
	// the test brings its own.
	role := ns + "-sa-reader"
	_, err := api.Client.RbacV1().ClusterRoles().Create(context.Background(), &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ClusterRole: %v", err)
	}
	api.BindClusterRole(t, ns, "viewer", role)

	// A kubeconfig with the admin token, as a subprocess would load it.
	cfg, err := clientcmd.BuildConfigFromFlags("", api.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	tests := []struct {
		name    string
		token   string
		allowed bool
	}{
		{name: "admin from kubeconfig", token: cfg.BearerToken, allowed: true},
		{name: "bound to a role that allows it", token: api.Token(t, ns, "viewer", 0), allowed: true},
		{name: "unbound", token: api.Token(t, ns, "nobody", 0), allowed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *cfg
			c.BearerToken = tt.token
			client, err := kubernetes.NewForConfig(&c)
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.CoreV1().ServiceAccounts(ns).List(context.Background(), metav1.ListOptions{})
			if tt.allowed && err != nil {
				t.Fatalf("list ServiceAccounts: %v", err)
			}
			if !tt.allowed && (err == nil || !strings.Contains(err.Error(), "forbidden")) {
				t.Fatalf("list ServiceAccounts: err = %v, want forbidden", err)
			}
		})
	}
}

func TestAPIServerApplyCRDs(t *testing.T) {
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	ns := api.NewNamespace(t)
	api.ApplyManifest(t, `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: smoke
  namespace: `+ns+`
spec:
  provider: vault
  parameters:
    roleName: app
`)
	spcs := schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasses"}
	got, err := api.Dynamic.Resource(spcs).Namespace(ns).Get(context.Background(), "smoke", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get SecretProviderClass: %v", err)
	}
	if p, _, _ := unstructured.NestedString(got.Object, "spec", "provider"); p != "vault" {
		t.Errorf("spec.provider = %q, want vault", p)
	}
}

// A private server with its own flags: here a cap on token lifetimes, which the shared
// one does not have.
func TestAPIServerPrivateWithExtraFlags(t *testing.T) {
	api := harness.StartAPIServer(t, "--service-account-max-token-expiration=1h")
	ns := api.NewNamespace(t)
	api.CreateServiceAccount(t, ns, "app", nil)
	token := api.Token(t, ns, "app", 48*time.Hour)
	claims := jwtClaims(t, token)
	if life := claims.Exp - claims.Iat; life > 3600 {
		t.Errorf("token lives %ds, want at most 3600 (the flag's cap)", life)
	}
	if claims.Iss != harness.ServiceAccountIssuer {
		t.Errorf("iss = %q, want %q", claims.Iss, harness.ServiceAccountIssuer)
	}
}

type claims struct {
	Iss string `json:"iss"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

func jwtClaims(t *testing.T, jwt string) claims {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode token payload: %v", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("parse token payload: %v", err)
	}
	return c
}
