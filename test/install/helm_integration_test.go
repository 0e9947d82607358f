//go:build integration

package install

import (
	"context"
	"fmt"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/secretmount/secretmount/test/harness"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

const spcCRD = "secretproviderclasses.secrets-store.csi.x-k8s.io"

// TestHelmInstallKeepsExistingSPCCRD runs a real `helm install` (Helm's Go SDK against
// the API server) on a cluster where the upstream driver already installed the
// SecretProviderClass CRD: Helm installs crds/ only when absent, so the existing CRD —
// and with it every SecretProviderClass users have — is left exactly as it was, and the
// release still deploys.
func TestHelmInstallKeepsExistingSPCCRD(t *testing.T) {
	a := harness.SharedAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The upstream install: the same CRD, owned by someone else, marked so we can tell.
	r, err := Render(chartDir(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := r.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var crd *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" && o.GetName() == spcCRD {
			crd = o.DeepCopy()
		}
	}
	if crd == nil {
		t.Fatalf("chart has no %s", spcCRD)
	}
	crd.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "upstream-install"})
	if _, err := a.Dynamic.Resource(crdResource).Apply(ctx, spcCRD, crd, metav1.ApplyOptions{FieldManager: "upstream-install", Force: true}); err != nil {
		t.Fatal(err)
	}
	before, err := a.Dynamic.Resource(crdResource).Get(ctx, spcCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	ns := a.NewNamespace(t)
	rel := helmInstall(t, a, ns, "helm-install", map[string]any{
		// The CSIDriver is cluster-wide and other tests on this server applied the default
		// one outside Helm; Helm rightly refuses to adopt it, so this release uses its own.
		"driverName":     "helm-install.secrets-store.example",
		"syncController": map[string]any{"replicas": 1},
	})
	if rel.Info.Status != release.StatusDeployed {
		t.Fatalf("release status %s: %s", rel.Info.Status, rel.Info.Description)
	}

	after, err := a.Dynamic.Resource(crdResource).Get(ctx, spcCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server's own CRD controllers update status on their own schedule, so
	// compare what an installer could change: spec generation, labels, field managers.
	if after.GetGeneration() != before.GetGeneration() || after.GetLabels()["app.kubernetes.io/managed-by"] != "upstream-install" {
		t.Errorf("helm install changed the existing CRD: generation %d -> %d, labels %v", before.GetGeneration(), after.GetGeneration(), after.GetLabels())
	}
	for _, m := range after.GetManagedFields() {
		if m.Manager == "helm" {
			t.Errorf("helm wrote fields of the existing CRD: %s %s", m.Operation, m.Time)
		}
	}
	// The release's own objects are there.
	ds, err := a.Client.AppsV1().DaemonSets(ns).Get(ctx, "helm-install-secretmount-driver", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("driver DaemonSet not installed: %v", err)
	}
	if len(ds.ManagedFields) == 0 || ds.ManagedFields[0].Manager != "helm" {
		t.Errorf("the release's objects are not written by manager helm: %v", ds.ManagedFields)
	}
	if _, err := a.Client.StorageV1().CSIDrivers().Get(ctx, "helm-install.secrets-store.example", metav1.GetOptions{}); err != nil {
		t.Errorf("CSIDriver not installed: %v", err)
	}

	// Uninstalling leaves the CRD (and so the users' SecretProviderClasses) alone too.
	un := action.NewUninstall(helmConfig(t, a, ns))
	if _, err := un.Run("helm-install"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if _, err := a.Dynamic.Resource(crdResource).Get(ctx, spcCRD, metav1.GetOptions{}); err != nil {
		t.Errorf("CRD gone after uninstall: %v", err)
	}
	if _, err := a.Client.AppsV1().DaemonSets(ns).Get(ctx, "helm-install-secretmount-driver", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("driver DaemonSet after uninstall: %v", err)
	}
}

func helmConfig(t *testing.T, a *harness.APIServer, ns string) *action.Configuration {
	t.Helper()
	// What the helm binary records as its field manager.
	kube.ManagedFieldsManager = "helm"
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &a.Kubeconfig
	flags.Namespace = &ns
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, ns, "secret", func(format string, v ...any) { t.Logf("helm: "+format, v...) }); err != nil {
		t.Fatalf("helm configuration: %v", err)
	}
	return cfg
}

func helmInstall(t *testing.T, a *harness.APIServer, ns, name string, values map[string]any) *release.Release {
	t.Helper()
	c, err := LoadChart(chartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	inst := action.NewInstall(helmConfig(t, a, ns))
	inst.ReleaseName = name
	inst.Namespace = ns
	inst.Timeout = time.Minute
	rel, err := inst.Run(c, values)
	if err != nil {
		t.Fatalf("helm install %s: %v", name, fmt.Errorf("%w", err))
	}
	return rel
}
