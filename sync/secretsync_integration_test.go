//go:build integration

package sync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/test/harness"
)

const (
	testPassword  = "Pa55:w/rd\\with'quote"
	testAccessKey = "AKIATESTACCESSKEY1"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTKEY"
)

func (e *env) createSync(t *testing.T, name, typ string, data []v1alpha1.SecretObjectData, mutate func(*v1alpha1.SecretSync)) {
	t.Helper()
	ss := &v1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: v1alpha1.SecretSyncSpec{
			SecretProviderClassName: "postgres-aws-secrets",
			ServiceAccountName:      "cnpg-sa",
			SecretObject:            v1alpha1.SecretObject{Type: typ, Data: data},
		},
	}
	if mutate != nil {
		mutate(ss)
	}
	if err := e.client.Create(context.Background(), ss); err != nil {
		t.Fatalf("create SecretSync %s: %v", name, err)
	}
}

// updateSync changes a SecretSync's spec, retrying when the controller's status write
// got there first.
func (e *env) updateSync(t *testing.T, name string, change func(*v1alpha1.SecretSync)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var ss v1alpha1.SecretSync
		if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, &ss); err != nil {
			return err
		}
		change(&ss)
		return e.client.Update(context.Background(), &ss)
	})
	if err != nil {
		t.Fatalf("update SecretSync %s: %v", name, err)
	}
}

func (e *env) syncStatus(t *testing.T, name string) v1alpha1.SecretSyncStatus {
	t.Helper()
	var ss v1alpha1.SecretSync
	if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, &ss); err != nil {
		t.Fatal(err)
	}
	return ss.Status
}

func (e *env) waitCondition(t *testing.T, name, condType string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	eventually(t, fmt.Sprintf("SecretSync %s condition %s=%s (%s)", name, condType, status, reason), func() (bool, string) {
		st := e.syncStatus(t, name)
		got = meta.FindStatusCondition(st.Conditions, condType)
		return got != nil && got.Status == status && got.Reason == reason, fmt.Sprintf("%+v", st.Conditions)
	})
	return got
}

func dataOf(s *corev1.Secret) map[string]string {
	m := map[string]string{}
	for k, v := range s.Data {
		m[k] = string(v)
	}
	return m
}

func sameData(s *corev1.Secret, want map[string]string) bool {
	if len(s.Data) != len(want) {
		return false
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			return false
		}
	}
	return true
}

var guideData = map[string][]v1alpha1.SecretObjectData{
	"postgres-credentials": {{SourcePath: "db-username", TargetKey: "username"}, {SourcePath: "db-password", TargetKey: "password"}},
	"s3-credentials":       {{SourcePath: "s3-access-key", TargetKey: "access-key"}, {SourcePath: "s3-secret-key", TargetKey: "secret-key"}},
}

// TestSecretSyncWithoutPod is the CloudNativePG setup with no pod mounting anything: the
// guide's class, SecretSyncs for the superuser, an initdb owner (basic-auth) and the S3
// credentials, then rotation, a label added later, an outage and recovery.
func TestSecretSyncWithoutPod(t *testing.T) {
	pg := harness.SharedPostgres(t)
	role := fmt.Sprintf("owner_%x", rand.Uint64())
	backend := newFakeBackend(
		map[string]string{"username": role, "password": testPassword},
		map[string]string{"accessKeyId": testAccessKey, "secretAccessKey": testSecretKey})
	e := startEnv(t, backend)
	pg.CreateRole(t, role, testPassword)

	e.createSync(t, "postgres-credentials", "", guideData["postgres-credentials"], nil)
	e.createSync(t, "s3-credentials", "", guideData["s3-credentials"], nil)
	e.createSync(t, "app-owner", "kubernetes.io/basic-auth", guideData["postgres-credentials"], func(ss *v1alpha1.SecretSync) {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, v1alpha1.SecretObjectData{
			TargetKey: "uri", Template: `postgresql://{{ file "db-username" | pathEscape }}:{{ file "db-password" | pathEscape }}@db:5432/app`})
	})

	pgSecret := e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"username": role, "password": testPassword})
	})
	if pgSecret.Type != corev1.SecretTypeOpaque || pgSecret.Labels[v1alpha1.SecretSyncLabel] != "postgres-credentials" {
		t.Fatalf("postgres-credentials: type %s labels %v", pgSecret.Type, pgSecret.Labels)
	}
	e.waitSecret(t, "s3-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"access-key": testAccessKey, "secret-key": testSecretKey})
	})
	owner := e.waitSecret(t, "app-owner", func(s *corev1.Secret) bool { return len(s.Data) == 3 })
	if owner.Type != corev1.SecretTypeBasicAuth {
		t.Fatalf("app-owner type %s", owner.Type)
	}
	wantURI := "postgresql://" + role + ":Pa55:w%2Frd%5Cwith%27quote@db:5432/app"
	if got := string(owner.Data["uri"]); got != wantURI {
		t.Fatalf("templated uri = %q, want %q", got, wantURI)
	}
	for _, name := range []string{"postgres-credentials", "s3-credentials", "app-owner"} {
		e.waitCondition(t, name, v1alpha1.ConditionCreate, metav1.ConditionTrue, v1alpha1.ReasonCreateSucceeded)
	}

	t.Run("synced credentials log in to PostgreSQL", func(t *testing.T) {
		s, _ := e.secret(t, "app-owner")
		conn := pg.Connect(t, pg.DSNFor(string(s.Data["username"]), string(s.Data["password"]), ""))
		var user string
		if err := conn.QueryRow(context.Background(), "select current_user").Scan(&user); err != nil || user != role {
			t.Fatalf("logged in as %q (%v), want %q", user, err, role)
		}
	})

	t.Run("a poll with nothing changed writes nothing", func(t *testing.T) {
		before := e.resourceVersions(t)
		unchanged := e.metricValue(t, "secretmount_sync_total", map[string]string{"result": "unchanged"})
		e.tick(t)
		eventually(t, "three unchanged syncs", func() (bool, string) {
			n := e.metricValue(t, "secretmount_sync_total", map[string]string{"result": "unchanged"})
			return n >= unchanged+3, fmt.Sprint(n)
		})
		if after := e.resourceVersions(t); after != before {
			t.Fatalf("resource versions changed on a no-change poll:\nbefore %s\nafter  %s", before, after)
		}
	})

	t.Run("a backend change reaches the Secret at the next poll", func(t *testing.T) {
		backend.set("prod/cnpg/postgres-credentials", "password", testPassword+"-rotated")
		e.tick(t)
		e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
			return string(s.Data["password"]) == testPassword+"-rotated"
		})
		e.waitCondition(t, "postgres-credentials", v1alpha1.ConditionUpdate, metav1.ConditionTrue, v1alpha1.ReasonValueChangeOrForceUpdateDetected)
	})

	t.Run("a label added to the spec reaches the Secret", func(t *testing.T) {
		e.updateSync(t, "postgres-credentials", func(ss *v1alpha1.SecretSync) {
			ss.Spec.SecretObject.Labels = map[string]string{"cnpg.io/reload": "true"}
			ss.Spec.SecretObject.Annotations = map[string]string{"team": "db"}
		})
		e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
			return s.Labels["cnpg.io/reload"] == "true" && s.Annotations["team"] == "db"
		})
		// And one removed from the spec leaves the Secret.
		e.updateSync(t, "postgres-credentials", func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Annotations = nil })
		e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
			_, has := s.Annotations["team"]
			return !has && s.Labels["cnpg.io/reload"] == "true"
		})
	})

	t.Run("an outage keeps the last good data", func(t *testing.T) {
		before, _ := e.secret(t, "postgres-credentials")
		backend.setDown(true)
		backend.set("prod/cnpg/postgres-credentials", "password", "never-written")
		e.tick(t)
		cond := e.waitCondition(t, "postgres-credentials", v1alpha1.ConditionUpdate, metav1.ConditionFalse, v1alpha1.ReasonProviderError)
		if !strings.Contains(cond.Message, "postgres-credentials") || !strings.Contains(cond.Message, "backend unavailable") {
			t.Fatalf("condition message %q does not name the object and the reason", cond.Message)
		}
		after, _ := e.secret(t, "postgres-credentials")
		if after.ResourceVersion != before.ResourceVersion || !sameData(after, dataOf(before)) {
			t.Fatal("the Secret was written during the outage")
		}
		eventually(t, "a Warning event naming the SecretSync", func() (bool, string) {
			evs, err := e.api.Client.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, ev := range evs.Items {
				if ev.Type == corev1.EventTypeWarning && ev.Reason == v1alpha1.ReasonProviderError &&
					ev.InvolvedObject.Name == "postgres-credentials" && strings.Contains(ev.Message, "secret "+e.ns+"/postgres-credentials") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d events", len(evs.Items))
		})
		backend.setDown(false)
		e.tick(t)
		e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { return string(s.Data["password"]) == "never-written" })
		e.waitCondition(t, "postgres-credentials", v1alpha1.ConditionUpdate, metav1.ConditionTrue, v1alpha1.ReasonValueChangeOrForceUpdateDetected)
	})

	t.Run("a type change replaces the Secret with the same data", func(t *testing.T) {
		before, _ := e.secret(t, "postgres-credentials")
		e.updateSync(t, "postgres-credentials", func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Type = "kubernetes.io/basic-auth" })
		after := e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { return s.Type == corev1.SecretTypeBasicAuth })
		if after.UID == before.UID || !sameData(after, dataOf(before)) || after.Labels["cnpg.io/reload"] != "true" {
			t.Fatalf("after the type change: uid %s (was %s), keys %v, labels %v", after.UID, before.UID, sortedKeys(after.Data), after.Labels)
		}
	})

	t.Run("logs, events, metrics and status carry no value", func(t *testing.T) {
		e.assertNoValues(t, testPassword, testPassword+"-rotated", "never-written", testAccessKey, testSecretKey, wantURI)
	})
}

func (e *env) resourceVersions(t *testing.T) string {
	t.Helper()
	var out []string
	secrets, err := e.api.Client.CoreV1().Secrets(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		out = append(out, "secret/"+s.Name+"="+s.ResourceVersion)
	}
	var syncs v1alpha1.SecretSyncList
	if err := e.client.List(context.Background(), &syncs, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range syncs.Items {
		out = append(out, "secretsync/"+s.Name+"="+s.ResourceVersion)
	}
	return strings.Join(out, " ")
}

// TestSecretSyncRefusals: what the controller will not do, each reported in a condition.
func TestSecretSyncRefusals(t *testing.T) {
	backend := newFakeBackend(map[string]string{"username": "postgres", "password": testPassword},
		map[string]string{"accessKeyId": testAccessKey, "secretAccessKey": testSecretKey})
	e := startEnv(t, backend)

	t.Run("a ServiceAccount of another namespace", func(t *testing.T) {
		e.createSync(t, "cross-namespace", "", guideData["postgres-credentials"], func(ss *v1alpha1.SecretSync) {
			ss.Spec.ServiceAccountName = "system:serviceaccount:kube-system:cnpg-sa"
		})
		cond := e.waitCondition(t, "cross-namespace", v1alpha1.ConditionCreate, metav1.ConditionFalse, v1alpha1.ReasonUserInputValidationFailed)
		if !strings.Contains(cond.Message, "spec.serviceAccountName") || !strings.Contains(cond.Message, `"kube-system"`) {
			t.Fatalf("message %q does not name the field and namespace", cond.Message)
		}
		if _, ok := e.secret(t, "cross-namespace"); ok {
			t.Fatal("a Secret was written")
		}
	})

	t.Run("a ServiceAccount that does not exist", func(t *testing.T) {
		e.createSync(t, "no-sa", "", guideData["postgres-credentials"], func(ss *v1alpha1.SecretSync) { ss.Spec.ServiceAccountName = "ghost" })
		cond := e.waitCondition(t, "no-sa", v1alpha1.ConditionCreate, metav1.ConditionFalse, v1alpha1.ReasonUserInputValidationFailed)
		if !strings.Contains(cond.Message, "ServiceAccount "+e.ns+"/ghost not found") {
			t.Fatalf("message %q", cond.Message)
		}
	})

	t.Run("a missing SecretProviderClass", func(t *testing.T) {
		e.createSync(t, "no-class", "", guideData["postgres-credentials"], func(ss *v1alpha1.SecretSync) { ss.Spec.SecretProviderClassName = "absent" })
		e.waitCondition(t, "no-class", v1alpha1.ConditionCreate, metav1.ConditionFalse, v1alpha1.ReasonControllerSPCError)
	})

	t.Run("a source path the class does not produce", func(t *testing.T) {
		e.createSync(t, "bad-path", "", []v1alpha1.SecretObjectData{{SourcePath: "db-passwd", TargetKey: "password"}}, nil)
		cond := e.waitCondition(t, "bad-path", v1alpha1.ConditionCreate, metav1.ConditionFalse, v1alpha1.ReasonUserInputValidationFailed)
		if !strings.Contains(cond.Message, "spec.secretObject.data[0].sourcePath") {
			t.Fatalf("message %q does not name the field", cond.Message)
		}
	})

	t.Run("a Secret it did not create, until adopted", func(t *testing.T) {
		orig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "hand-made"}, StringData: map[string]string{"password": "by-hand"}}
		if _, err := e.api.Client.CoreV1().Secrets(e.ns).Create(context.Background(), orig, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.createSync(t, "hand-made", "", guideData["postgres-credentials"], nil)
		cond := e.waitCondition(t, "hand-made", v1alpha1.ConditionCreate, metav1.ConditionFalse, v1alpha1.ReasonSecretNotOwned)
		if !strings.Contains(cond.Message, AdoptAnnotation) {
			t.Fatalf("message %q does not say how to allow the take-over", cond.Message)
		}
		if s, _ := e.secret(t, "hand-made"); string(s.Data["password"]) != "by-hand" || len(s.Data) != 1 {
			t.Fatal("the hand-made Secret was changed")
		}
		s, _ := e.secret(t, "hand-made")
		s.Annotations = map[string]string{AdoptAnnotation: "true"}
		if _, err := e.api.Client.CoreV1().Secrets(e.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.updateSync(t, "hand-made", func(ss *v1alpha1.SecretSync) { ss.Spec.ForceSynchronization = "adopt" })
		e.waitSecret(t, "hand-made", func(s *corev1.Secret) bool { return string(s.Data["password"]) == testPassword })
		e.waitCondition(t, "hand-made", v1alpha1.ConditionCreate, metav1.ConditionTrue, v1alpha1.ReasonCreateSucceeded)
	})

	t.Run("the API server's own schema", func(t *testing.T) {
		ss := &v1alpha1.SecretSync{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "both"},
			Spec: v1alpha1.SecretSyncSpec{SecretProviderClassName: "postgres-aws-secrets", ServiceAccountName: "cnpg-sa",
				SecretObject: v1alpha1.SecretObject{Data: []v1alpha1.SecretObjectData{{SourcePath: "db-username", Template: "x", TargetKey: "k"}}}},
		}
		err := e.client.Create(context.Background(), ss)
		if err == nil || !strings.Contains(err.Error(), "exactly one of sourcePath and template") {
			t.Fatalf("create = %v, want the CRD's refusal", err)
		}
	})

	t.Run("logs, events, metrics and status carry no value", func(t *testing.T) {
		e.assertNoValues(t, testPassword, testAccessKey, testSecretKey)
	})
}

// TestRotationSharesFetches: 20 SecretSyncs of one class and one ServiceAccount over 3
// rotation ticks reach the backend at most once per object per tick.
func TestRotationSharesFetches(t *testing.T) {
	backend := newFakeBackend(map[string]string{"username": "postgres", "password": testPassword},
		map[string]string{"accessKeyId": testAccessKey, "secretAccessKey": testSecretKey})
	e := startEnv(t, backend)
	const syncs, ticks = 20, 3
	for i := range syncs {
		e.createSync(t, fmt.Sprintf("pg-%02d", i), "", guideData["postgres-credentials"], nil)
	}
	for i := range syncs {
		e.waitCondition(t, fmt.Sprintf("pg-%02d", i), v1alpha1.ConditionCreate, metav1.ConditionTrue, v1alpha1.ReasonCreateSucceeded)
	}
	objects := []string{"prod/cnpg/postgres-credentials", "prod/cnpg/s3-credentials"}
	base := map[string]int{}
	for _, obj := range objects {
		base[obj] = backend.readsOf(obj)
	}
	done := e.metricValue(t, "secretmount_sync_total", nil)
	for tick := 1; tick <= ticks; tick++ {
		e.tick(t)
		want := done + float64(tick*syncs)
		eventually(t, fmt.Sprintf("%d syncs after tick %d", syncs, tick), func() (bool, string) {
			n := e.metricValue(t, "secretmount_sync_total", nil)
			return n >= want, fmt.Sprint(n)
		})
	}
	for _, obj := range objects {
		reads := backend.readsOf(obj) - base[obj]
		if reads > ticks {
			t.Errorf("%s: %d backend reads over %d ticks for %d SecretSyncs, want at most %d", obj, reads, ticks, syncs, ticks)
		}
		t.Logf("%s: %d backend reads over %d ticks for %d SecretSyncs", obj, reads, ticks, syncs)
	}
	t.Logf("creating the %d SecretSyncs took %d backend reads per object", syncs, base[objects[0]])
}
