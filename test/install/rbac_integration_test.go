//go:build integration

package install

import (
	"bytes"
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider/vault"
	"github.com/secretmount/secretmount/test/harness"
)

// as returns a rest.Config that acts as ServiceAccount namespace/name, as the chart's
// pods would with their projected tokens.
func as(base *rest.Config, namespace, name string) *rest.Config {
	cfg := rest.CopyConfig(base)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

func clientset(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check is one API call and whether RBAC must let it through.
type check struct {
	name    string
	allowed bool
	call    func(ctx context.Context) error
}

func runChecks(t *testing.T, checks []check) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range checks {
		err := c.call(ctx)
		switch {
		case c.allowed && apierrors.IsForbidden(err):
			t.Errorf("%s: forbidden, but the code needs it: %v", c.name, err)
		case c.allowed && err != nil && !apierrors.IsNotFound(err) && !apierrors.IsAlreadyExists(err):
			t.Errorf("%s: %v", c.name, err)
		case !c.allowed && !apierrors.IsForbidden(err):
			t.Errorf("%s: allowed (err %v), want forbidden", c.name, err)
		}
	}
}

// sar asks the API server's authorizer whether user may do verb on a resource, for
// resources whose CRD the cluster may not serve.
func sar(a *harness.APIServer, user, namespace, group, resource, sub, verb string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		r, err := a.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: []string{"system:serviceaccounts", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: namespace, Group: group, Resource: resource, Subresource: sub, Verb: verb,
			},
		}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !r.Status.Allowed {
			return apierrors.NewForbidden(corev1.Resource(resource), "", nil)
		}
		return nil
	}
}

func podPatch(c kubernetes.Interface, ns string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CoreV1().Pods(ns).Patch(ctx, "app", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
		return err
	}
}

func secretGet(c kubernetes.Interface, ns, name string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
}

// TestRBACDriver installs the chart and acts as the driver's ServiceAccount: the real
// SecretProviderClass informer and the real Vault key store work with the chart's
// roles, and Secrets it has no business with stay out of reach.
func TestRBACDriver(t *testing.T) {
	a := harness.SharedAPIServer(t)
	ns, _ := installChart(t, "rbac-driver", nil)
	app := a.NewNamespace(t)
	seedApp(t, a, app)
	cfg := as(a.RestConfig(), ns, "rbac-driver-secretmount-driver")
	c := clientset(t, cfg)

	// The driver's SecretProviderClass cache: list+watch across namespaces.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	classes, err := driver.NewCacheClassGetter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := classes.Start(ctx); err != nil {
		t.Fatalf("driver SecretProviderClass cache with the chart's RBAC: %v", err)
	}
	spc, err := classes.GetClass(ctx, types.NamespacedName{Namespace: app, Name: "db"})
	if err != nil || spc.Spec.Provider != "vault" {
		t.Fatalf("GetClass(%s/db) = %v, %v", app, spc, err)
	}

	// The Vault backend's version key: created on first use, read back afterwards.
	first, err := (&vault.SecretKeySource{Client: c, Namespace: ns, Name: "secretmount-vault-version-key"}).Key(ctx)
	if err != nil {
		t.Fatalf("vault key Secret with the chart's RBAC: %v", err)
	}
	again, err := (&vault.SecretKeySource{Client: c, Namespace: ns, Name: "secretmount-vault-version-key"}).Key(ctx)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second key read: equal=%v, %v", bytes.Equal(first, again), err)
	}

	runChecks(t, []check{
		{"get the pod's ServiceAccount (AWS role annotation)", true, func(ctx context.Context) error {
			_, err := c.CoreV1().ServiceAccounts(app).Get(ctx, "app", metav1.GetOptions{})
			return err
		}},
		{"read an application Secret in another namespace", false, secretGet(c, app, "db-password")},
		{"read another Secret of its own namespace", false, secretGet(c, ns, "unrelated")},
		{"list Secrets of its own namespace", false, func(ctx context.Context) error {
			_, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a Secret in an application namespace (syncSecret off)", false, func(ctx context.Context) error {
			_, err := c.CoreV1().Secrets(app).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"patch a pod", false, podPatch(c, app)},
		{"mint a token for a ServiceAccount", false, func(ctx context.Context) error {
			_, err := c.CoreV1().ServiceAccounts(app).CreateToken(ctx, "app", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			return err
		}},
		{"write a SecretProviderClass", false, func(ctx context.Context) error {
			return classesWriter(t, cfg).Delete(ctx, spc)
		}},
	})
}

// TestRBACSync acts as the sync controller's ServiceAccount, for a cluster-wide and a
// one-namespace install.
func TestRBACSync(t *testing.T) {
	a := harness.SharedAPIServer(t)
	for _, scoped := range []bool{false, true} {
		name := map[bool]string{false: "cluster", true: "scoped"}[scoped]
		t.Run(name, func(t *testing.T) {
			app := a.NewNamespace(t)
			other := a.NewNamespace(t)
			release := "rbac-sync-" + name
			values := map[string]any{}
			if scoped {
				values["syncController"] = map[string]any{"watchNamespace": app}
			}
			ns, _ := installChart(t, release, values)
			seedApp(t, a, app)
			seedApp(t, a, other)
			sa := release + "-secretmount-sync"
			user := "system:serviceaccount:" + ns + ":" + sa
			c := clientset(t, as(a.RestConfig(), ns, sa))
			checks := []check{
				{"watch SecretSyncs", true, sar(a, user, app, "secret-sync.x-k8s.io", "secretsyncs", "", "watch")},
				{"update SecretSync status", true, sar(a, user, app, "secret-sync.x-k8s.io", "secretsyncs", "status", "update")},
				{"write a SecretSync spec", false, sar(a, user, app, "secret-sync.x-k8s.io", "secretsyncs", "", "update")},
				{"mint a token for the SecretSync's ServiceAccount", true, func(ctx context.Context) error {
					_, err := c.CoreV1().ServiceAccounts(app).CreateToken(ctx, "app", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}}}, metav1.CreateOptions{})
					return err
				}},
				{"apply the synced Secret", true, func(ctx context.Context) error {
					s := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "synced", Namespace: app}, StringData: map[string]string{"password": "x"}}
					body, err := runtimeJSON(s)
					if err != nil {
						return err
					}
					force := true
					_, err = c.CoreV1().Secrets(app).Patch(ctx, "synced", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "secretmount", Force: &force})
					return err
				}},
				{"record an event", true, func(ctx context.Context) error {
					_, err := c.CoreV1().Events(app).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "sync-"}, InvolvedObject: corev1.ObjectReference{Kind: "Secret", Namespace: app, Name: "synced"}, Reason: "Synced", Type: "Normal"}, metav1.CreateOptions{})
					return err
				}},
				{"take the leader lease", true, func(ctx context.Context) error {
					_, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "secretmount-sync"}}, metav1.CreateOptions{})
					return err
				}},
				{"take a lease elsewhere", false, func(ctx context.Context) error {
					_, err := c.CoordinationV1().Leases(app).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
					return err
				}},
				{"list Secrets", false, func(ctx context.Context) error {
					_, err := c.CoreV1().Secrets(app).List(ctx, metav1.ListOptions{})
					return err
				}},
				{"update a Secret without apply", false, sar(a, user, app, "", "secrets", "", "update")},
				{"patch a pod", false, podPatch(c, app)},
			}
			if scoped {
				checks = append(checks,
					check{"read a Secret in a namespace it does not serve", false, secretGet(c, other, "db-password")},
					check{"mint a token in a namespace it does not serve", false, func(ctx context.Context) error {
						_, err := c.CoreV1().ServiceAccounts(other).CreateToken(ctx, "app", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
						return err
					}},
				)
			}
			runChecks(t, checks)
		})
	}
}

// seedApp creates what an application namespace holds: a ServiceAccount, a Secret the
// controllers do not manage, a pod and a SecretProviderClass.
func seedApp(t *testing.T, a *harness.APIServer, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a.CreateServiceAccount(t, ns, "app", map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/app"})
	if _, err := a.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password"}, StringData: map[string]string{"password": "not-for-controllers"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spc := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec:       secretsstorev1.SecretProviderClassSpec{Provider: "vault", Parameters: map[string]string{"roleName": "app", "objects": "- objectName: password\n  secretPath: secret/data/db\n  secretKey: password\n"}},
	}
	if err := classesWriter(t, a.RestConfig()).Create(ctx, spc); err != nil {
		t.Fatal(err)
	}
}

// TestRBACDriverSyncSecret: with syncSecret.enabled (upstream's name for the same
// thing) the driver may write the secretObjects Secrets in the pods' namespaces, by
// name and apply, and still may not list or watch Secrets or touch pods.
func TestRBACDriverSyncSecret(t *testing.T) {
	a := harness.SharedAPIServer(t)
	ns, _ := installChart(t, "rbac-driver-sync", map[string]any{"syncSecret": map[string]any{"enabled": true}})
	app := a.NewNamespace(t)
	seedApp(t, a, app)
	sa := "rbac-driver-sync-secretmount-driver"
	user := "system:serviceaccount:" + ns + ":" + sa
	c := clientset(t, as(a.RestConfig(), ns, sa))
	runChecks(t, []check{
		{"apply a secretObjects Secret", true, func(ctx context.Context) error {
			body, err := runtimeJSON(&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "from-mount", Namespace: app}, StringData: map[string]string{"k": "v"}})
			if err != nil {
				return err
			}
			force := true
			_, err = c.CoreV1().Secrets(app).Patch(ctx, "from-mount", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "secretmount", Force: &force})
			return err
		}},
		{"read it back by name", true, secretGet(c, app, "from-mount")},
		{"delete it after its last pod", true, func(ctx context.Context) error {
			return c.CoreV1().Secrets(app).Delete(ctx, "from-mount", metav1.DeleteOptions{})
		}},
		{"warn on the pod", true, func(ctx context.Context) error {
			_, err := c.CoreV1().Events(app).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: app, Name: "app"}, Reason: "SecretSyncFailed", Type: "Warning"}, metav1.CreateOptions{})
			return err
		}},
		{"list Secrets", false, func(ctx context.Context) error {
			_, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch Secrets", false, sar(a, user, app, "", "secrets", "", "watch")},
		{"patch a pod", false, podPatch(c, app)},
	})
}
