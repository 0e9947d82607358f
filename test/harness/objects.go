package harness

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// requestTimeout bounds each helper's calls to the API server.
const requestTimeout = 30 * time.Second

// DefaultTokenTTL is the lifetime Token asks for when given 0. The API server refuses
// TokenRequests for less than 10 minutes.
const DefaultTokenTTL = time.Hour

// CreateNamespace creates the namespace name; it is not deleted afterwards (without a
// controller manager it would stay Terminating).
func (a *APIServer) CreateNamespace(t testing.TB, name string) *corev1.Namespace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ns, err := a.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("failed to create namespace %s: %v", name, err)
	}
	return ns
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace named after the test with a random suffix, so tests
// sharing an API server do not collide, and returns its name.
func (a *APIServer) NewNamespace(t testing.TB) string {
	t.Helper()
	suffix, err := randomHex(3)
	if err != nil {
		t.Fatal(err)
	}
	name := namespaceName(t.Name(), suffix)
	a.CreateNamespace(t, name)
	return name
}

// namespaceName turns a test name into a DNS label (at most 63 characters) ending in
// suffix.
func namespaceName(testName, suffix string) string {
	base := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if limit := 62 - len(suffix); len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	if base == "" {
		base = "test"
	}
	return base + "-" + suffix
}

// CreateServiceAccount creates ServiceAccount namespace/name with the given annotations
// (nil for none).
func (a *APIServer) CreateServiceAccount(t testing.TB, namespace, name string, annotations map[string]string) *corev1.ServiceAccount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	sa, err := a.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("failed to create ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return sa
}

// Token returns a ServiceAccount token from the TokenRequest API for the given audiences
// (none means the API server's own, ServiceAccountIssuer) living ttl (0 means
// DefaultTokenTTL).
func (a *APIServer) Token(t testing.TB, namespace, serviceAccount string, ttl time.Duration, audiences ...string) string {
	t.Helper()
	token, err := a.requestToken(namespace, serviceAccount, ttl, audiences)
	if err != nil {
		t.Fatal(err)
	}
	// A ServiceAccount token is a credential: secretmount must not log or echo it.
	RecordSecretValue(t, token)
	return token
}

func (a *APIServer) requestToken(namespace, serviceAccount string, ttl time.Duration, audiences []string) (string, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	seconds := int64(ttl / time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	tr, err := a.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to request a token for ServiceAccount %s/%s (audiences %v, ttl %s): %w", namespace, serviceAccount, audiences, ttl, err)
	}
	return tr.Status.Token, nil
}

// BindClusterRole binds ClusterRole clusterRole to ServiceAccount namespace/name across
// the cluster.
func (a *APIServer) BindClusterRole(t testing.TB, namespace, serviceAccount, clusterRole string) {
	t.Helper()
	if err := a.bindClusterRole(namespace, serviceAccount, clusterRole); err != nil {
		t.Fatal(err)
	}
}

func (a *APIServer) bindClusterRole(namespace, serviceAccount, clusterRole string) error {
	name := notDNSLabel.ReplaceAllString(fmt.Sprintf("%s-%s-%s", namespace, serviceAccount, strings.ToLower(clusterRole)), "-")
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, err := a.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: serviceAccount}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to bind ClusterRole %s to ServiceAccount %s/%s: %w", clusterRole, namespace, serviceAccount, err)
	}
	return nil
}

// ensureServiceAccount creates namespace and ServiceAccount unless they exist, for
// helpers that several tests on a shared server call.
func (a *APIServer) ensureServiceAccount(namespace, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, err := a.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %s: %w", namespace, err)
	}
	_, err = a.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return nil
}
