package install

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRenderDefaults(t *testing.T) {
	objs := render(t, Options{ReleaseName: "secretmount", Namespace: "secretmount-system"})

	want := map[string]int{
		"CustomResourceDefinition": 0, // counted below: the chart's crds/ files
		"CSIDriver":                1,
		"DaemonSet":                1,
		"Deployment":               1,
		"PodDisruptionBudget":      1,
		"ServiceAccount":           2,
		"ClusterRole":              2,
		"ClusterRoleBinding":       2,
		"Role":                     2,
		"RoleBinding":              2,
	}
	got := kinds(objs)
	want["CustomResourceDefinition"] = got["CustomResourceDefinition"]
	if got["CustomResourceDefinition"] < 1 {
		t.Errorf("no CRDs rendered from crds/")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rendered kinds = %v, want %v", got, want)
	}
	find(t, objs, "CustomResourceDefinition", "secretproviderclasses.secrets-store.csi.x-k8s.io")

	csi := find(t, objs, "CSIDriver", "secrets-store.csi.k8s.io")
	spec := csi.Object["spec"].(map[string]any)
	wantSpec := map[string]any{
		"attachRequired":       false,
		"podInfoOnMount":       true,
		"volumeLifecycleModes": []any{"Ephemeral"},
		"requiresRepublish":    true,
		"fsGroupPolicy":        "File",
		"tokenRequests":        []any{map[string]any{"audience": "sts.amazonaws.com"}, map[string]any{"audience": "vault"}},
	}
	if !reflect.DeepEqual(spec, wantSpec) {
		t.Errorf("CSIDriver spec = %v, want %v", spec, wantSpec)
	}

	ds := find(t, objs, "DaemonSet", "secretmount-driver")
	pod := ds.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if pod["priorityClassName"] != "system-node-critical" {
		t.Errorf("driver priorityClassName = %v", pod["priorityClassName"])
	}
	if pod["serviceAccountName"] != "secretmount-driver" {
		t.Errorf("driver serviceAccountName = %v", pod["serviceAccountName"])
	}
	if tol, _ := pod["tolerations"].([]any); len(tol) == 0 {
		t.Errorf("driver has no tolerations: it would miss tainted nodes")
	}
	cs := containers(t, ds)
	if len(cs) != 3 {
		t.Fatalf("driver containers = %d, want driver, registrar and livenessprobe", len(cs))
	}
	for name, c := range cs {
		privileged := nested(c, "securityContext", "privileged") == true
		if privileged != (name == "secrets-store") {
			t.Errorf("container %s privileged = %v; only the mounting container may be", name, privileged)
		}
		if nested(c, "resources", "requests") == nil || nested(c, "resources", "limits") == nil {
			t.Errorf("container %s has no resource requests and limits", name)
		}
		for _, m := range c["volumeMounts"].([]any) {
			mm := m.(map[string]any)
			if mm["mountPropagation"] != nil && (name != "secrets-store" || mm["mountPropagation"] != "Bidirectional") {
				t.Errorf("container %s mounts %v with propagation %v", name, mm["name"], mm["mountPropagation"])
			}
		}
	}
	mountsOf := func(name string) map[string]string {
		m := map[string]string{}
		for _, v := range cs[name]["volumeMounts"].([]any) {
			vm := v.(map[string]any)
			m[vm["mountPath"].(string)] = vm["name"].(string) + "/" + str(vm["mountPropagation"])
		}
		return m
	}
	driverMounts := mountsOf("secrets-store")
	for path, want := range map[string]string{
		"/var/lib/kubelet/pods":                "mountpoint-dir/Bidirectional",
		"/csi":                                 "plugin-dir/",
		"/var/run/secrets-store-csi-providers": "providers-dir/",
		"/etc/kubernetes/secrets-store-csi-providers": "providers-dir-0/",
	} {
		if driverMounts[path] != want {
			t.Errorf("driver mount %s = %q, want %q", path, driverMounts[path], want)
		}
	}
	if a := args(t, cs["node-driver-registrar"]); !slices.Contains(a, "--kubelet-registration-path=/var/lib/kubelet/plugins/csi-secrets-store/csi.sock") {
		t.Errorf("registrar args %v do not register the driver socket", a)
	}

	dep := find(t, objs, "Deployment", "secretmount-sync")
	podSec := nested(dep.Object, "spec", "template", "spec", "securityContext").(map[string]any)
	if podSec["runAsNonRoot"] != true {
		t.Errorf("sync controller may run as root: %v", podSec)
	}
	sc := containers(t, dep)["sync"]
	if nested(sc, "securityContext", "allowPrivilegeEscalation") != false || nested(sc, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("sync container security context too loose: %v", sc["securityContext"])
	}
	if a := args(t, cs["secrets-store"]); !slices.Contains(a, "--enable-secret-sync=false") {
		t.Errorf("driver args %v: mount-driven sync must be off unless syncSecret.enabled, as upstream", a)
	}
	if a := args(t, sc); !slices.Contains(a, "--leader-elect=true") {
		t.Errorf("sync args %v: no leader election with 2 replicas", a)
	}
	// Both roles keep the Vault version key in the one Secret the Role lets them read.
	keyRole := find(t, objs, "Role", "secretmount-vault-key")
	names := nested(keyRole.Object["rules"].([]any)[0].(map[string]any), "resourceNames").([]any)
	for _, a := range [][]string{args(t, cs["secrets-store"]), args(t, sc)} {
		if !slices.Contains(a, "--vault-version-key-secret=secretmount-system/"+names[0].(string)) {
			t.Errorf("args %v do not name the Vault key Secret the Role allows (%v)", a, names)
		}
	}
	pdb := find(t, objs, "PodDisruptionBudget", "secretmount-sync")
	if sel := nested(pdb.Object, "spec", "selector", "matchLabels"); !reflect.DeepEqual(sel, nested(dep.Object, "spec", "selector", "matchLabels")) {
		t.Errorf("PDB selector %v does not match the sync Deployment's", sel)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// TestRenderUpstreamValues renders with the values a user of the upstream chart
// passes and checks each upstream name has the upstream meaning here.
func TestRenderUpstreamValues(t *testing.T) {
	objs := render(t, Options{ReleaseName: "csi-secrets-store", Namespace: "kube-system", Values: upstreamValues(t)})

	ds := find(t, objs, "DaemonSet", "csi-secrets-store-secretmount-driver")
	driver := containers(t, ds)["secrets-store"]
	a := args(t, driver)
	for _, want := range []string{"--enable-secret-rotation=true", "--rotation-poll-interval=1m30s", "--enable-secret-sync=true", "--v=3", "--log-format=json"} {
		if !slices.Contains(a, want) {
			t.Errorf("driver args %v lack %s", a, want)
		}
	}
	found := false
	for _, v := range nested(ds.Object, "spec", "template", "spec", "volumes").([]any) {
		vm := v.(map[string]any)
		if vm["name"] == "mountpoint-dir" {
			found = nested(vm, "hostPath", "path") == "/var/lib/k0s/kubelet/pods"
		}
	}
	if !found {
		t.Errorf("linux.kubeletRootDir did not move the pods volume")
	}
	if a := args(t, containers(t, ds)["node-driver-registrar"]); !slices.Contains(a, "--kubelet-registration-path=/var/lib/k0s/kubelet/plugins/csi-secrets-store/csi.sock") {
		t.Errorf("registrar args %v ignore linux.kubeletRootDir", a)
	}
	tol := nested(ds.Object, "spec", "template", "spec", "tolerations").([]any)
	sync := args(t, containers(t, find(t, objs, "Deployment", "csi-secrets-store-secretmount-sync"))["sync"])
	for _, want := range []string{"--rotation-poll-interval=1m30s", "--v=3", "--log-format=json"} {
		if !slices.Contains(sync, want) {
			t.Errorf("sync args %v lack %s", sync, want)
		}
	}
	if len(tol) != 1 || nested(tol[0].(map[string]any), "key") != "node-role.kubernetes.io/control-plane" {
		t.Errorf("linux.tolerations not applied: %v", tol)
	}
	if ps := nested(ds.Object, "spec", "template", "spec", "imagePullSecrets"); !reflect.DeepEqual(ps, []any{map[string]any{"name": "regcred"}}) {
		t.Errorf("imagePullSecrets = %v", ps)
	}

	// syncSecret.enabled grants the driver the Secret writes mount-driven sync needs,
	// as upstream's value does; without it the driver cannot touch Secrets outside
	// its own namespace.
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   bool
	}{
		{"syncSecret.enabled", upstreamValues(t), true},
		{"defaults", nil, false},
	} {
		objs := render(t, Options{ReleaseName: "csi-secrets-store", Namespace: "kube-system", Values: tc.values})
		cr := find(t, objs, "ClusterRole", "csi-secrets-store-secretmount-driver")
		if got := grants(cr, "", "secrets", "patch"); got != tc.want {
			t.Errorf("%s: driver ClusterRole patches secrets = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// grants says whether a role's rules allow verb on group/resource.
func grants(role *unstructured.Unstructured, group, resource, verb string) bool {
	rules, _ := role.Object["rules"].([]any)
	for _, r := range rules {
		rm := r.(map[string]any)
		if has(rm["apiGroups"], group) && has(rm["resources"], resource) && has(rm["verbs"], verb) && rm["resourceNames"] == nil {
			return true
		}
	}
	return false
}

func has(list any, s string) bool {
	l, _ := list.([]any)
	for _, v := range l {
		if v == s || v == "*" {
			return true
		}
	}
	return false
}

func TestRenderOptionalParts(t *testing.T) {
	tests := []struct {
		name    string
		values  map[string]any
		apis    []string
		present map[string]int
	}{
		{
			name:    "service monitor",
			values:  map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
			apis:    []string{"monitoring.coreos.com/v1"},
			present: map[string]int{"ServiceMonitor": 2, "Service": 2},
		},
		{
			name:    "no sync controller",
			values:  map[string]any{"syncController": map[string]any{"enabled": false}},
			present: map[string]int{"Deployment": 0, "PodDisruptionBudget": 0, "ServiceAccount": 1, "DaemonSet": 1},
		},
		{
			name:    "sync controller in one namespace",
			values:  map[string]any{"syncController": map[string]any{"watchNamespace": "cnpg-system"}},
			present: map[string]int{"ClusterRole": 1, "Role": 3, "RoleBinding": 3},
		},
		{
			name:    "driver name and audiences",
			values:  map[string]any{"driverName": "secrets.example.com", "tokenRequests": []any{map[string]any{"audience": "vault-prod", "expirationSeconds": 3600}}},
			present: map[string]int{"CSIDriver": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := kinds(render(t, Options{Values: tc.values, APIVersions: tc.apis}))
			for k, n := range tc.present {
				if got[k] != n {
					t.Errorf("%d %s rendered, want %d (all: %v)", got[k], k, n, got)
				}
			}
		})
	}
	objs := render(t, Options{Values: tests[3].values})
	csi := find(t, objs, "CSIDriver", "secrets.example.com")
	if tr := nested(csi.Object, "spec", "tokenRequests"); !reflect.DeepEqual(tr, []any{map[string]any{"audience": "vault-prod", "expirationSeconds": float64(3600)}}) {
		t.Errorf("tokenRequests = %#v", tr)
	}
	a := strings.Join(args(t, containers(t, find(t, objs, "DaemonSet", "secretmount-driver"))["secrets-store"]), " ")
	if !strings.Contains(a, "--driver-name=secrets.example.com") {
		t.Errorf("driver args %q do not carry the driver name", a)
	}
}
