//go:build integration

package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/providerclass"
)

// node is one node's MountSync, as the driver there would run it.
type node struct {
	sync *MountSync
}

func (e *env) startNode(t *testing.T) *node {
	t.Helper()
	logger := funcr.New(func(prefix, args string) { e.logs.add(prefix + " " + args) }, funcr.Options{Verbosity: 10})
	rec := &recordingEvents{buf: e.logs}
	m := NewMountSync(NewWriter(e.api.Client), e.client, rec, e.metrics, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx, 2); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &node{sync: m}
}

// recordingEvents writes events into the env's log buffer, for the value check.
type recordingEvents struct{ buf *syncBuffer }

func (r *recordingEvents) Eventf(_ runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.buf.add("event " + eventtype + " " + reason + " " + fmt.Sprintf(messageFmt, args...))
}

// publish renders the guide's class for a pod, as the driver would after a fetch, and
// tells the node's MountSync.
func (e *env) publish(t *testing.T, n *node, volumeID, pod string, docs map[string]map[string]string) driver.PublishedVolume {
	t.Helper()
	spc := e.classOf(t)
	plan, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: e.ns, PodName: pod, PodUID: "uid-" + pod, ServiceAccount: "cnpg-sa"})
	if err != nil {
		t.Fatal(err)
	}
	contents := make([]providerclass.ObjectContent, len(plan.Objects))
	for i, o := range plan.Objects {
		raw, err := json.Marshal(docs[o.Name])
		if err != nil {
			t.Fatal(err)
		}
		contents[i] = providerclass.ObjectContent{Bytes: raw, Version: "1"}
	}
	files, err := plan.Render(contents)
	if err != nil {
		t.Fatal(err)
	}
	v := driver.PublishedVolume{
		VolumeID: volumeID, TargetPath: "/var/lib/kubelet/pods/" + pod + "/volumes/x", Class: types.NamespacedName{Namespace: e.ns, Name: spc.Name},
		Pod: driver.PodRef{Namespace: e.ns, Name: pod, UID: "uid-" + pod}, ServiceAccount: "cnpg-sa", Provider: "aws", UpdatedAt: time.Now(),
	}
	n.sync.Published(v, plan, files)
	return v
}

func ownerUIDs(s *corev1.Secret) map[string]bool {
	m := map[string]bool{}
	for _, o := range s.OwnerReferences {
		if o.Kind == "Pod" {
			m[string(o.UID)] = true
		}
	}
	return m
}

// TestMountSync: the guide's secretObjects from two pods on two nodes, byte-exact, owned by
// both pods; unpublishing drops each pod's reference and the last one removes the Secret.
func TestMountSync(t *testing.T) {
	e := startEnv(t, newFakeBackend(nil, nil))
	nodeA, nodeB := e.startNode(t), e.startNode(t)
	docs := map[string]map[string]string{
		"prod/cnpg/postgres-credentials": {"username": "postgres", "password": testPassword + "\n"},
		"prod/cnpg/s3-credentials":       {"accessKeyId": testAccessKey, "secretAccessKey": testSecretKey},
	}
	va := e.publish(t, nodeA, "vol-a", "pg-1", docs)
	pg := e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"username": "postgres", "password": testPassword + "\n"}) && ownerUIDs(s)["uid-pg-1"]
	})
	if pg.Type != corev1.SecretTypeOpaque || pg.Labels[mountManagedLabel] != "true" {
		t.Fatalf("type %s labels %v", pg.Type, pg.Labels)
	}
	e.waitSecret(t, "s3-credentials", func(s *corev1.Secret) bool {
		return sameData(s, map[string]string{"access-key": testAccessKey, "secret-key": testSecretKey})
	})

	vb := e.publish(t, nodeB, "vol-b", "pg-2", docs)
	e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
		o := ownerUIDs(s)
		return o["uid-pg-1"] && o["uid-pg-2"] && len(o) == 2
	})

	t.Run("a rotated value reaches the Secret", func(t *testing.T) {
		docs["prod/cnpg/postgres-credentials"]["password"] = testPassword + "-rotated"
		e.publish(t, nodeA, "vol-a", "pg-1", docs)
		s := e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { return string(s.Data["password"]) == testPassword+"-rotated" })
		if o := ownerUIDs(s); len(o) != 2 {
			t.Fatalf("owners after a data update: %v", o)
		}
	})

	t.Run("unpublish drops only that pod", func(t *testing.T) {
		nodeA.sync.Unpublished(va)
		s := e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool {
			o := ownerUIDs(s)
			return !o["uid-pg-1"] && o["uid-pg-2"]
		})
		if string(s.Data["password"]) != testPassword+"-rotated" {
			t.Fatal("data changed on unpublish")
		}
	})

	t.Run("the last unpublish removes the Secret, after a restart too", func(t *testing.T) {
		restarted := e.startNode(t) // knows nothing of vol-b: reads the class to learn its Secrets
		restarted.sync.Unpublished(vb)
		for _, name := range []string{"postgres-credentials", "s3-credentials"} {
			eventually(t, name+" deleted", func() (bool, string) {
				s, ok := e.secret(t, name)
				if !ok {
					return true, ""
				}
				return false, "owners " + keysString(ownerUIDs(s))
			})
		}
	})

	t.Run("never while a pod still uses it", func(t *testing.T) {
		e.publish(t, nodeA, "vol-c", "pg-3", docs)
		e.publish(t, nodeB, "vol-d", "pg-4", docs)
		e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { return len(ownerUIDs(s)) == 2 })
		nodeA.sync.Unpublished(driver.PublishedVolume{VolumeID: "vol-c", Class: va.Class, Pod: driver.PodRef{Namespace: e.ns, Name: "pg-3", UID: "uid-pg-3"}})
		e.waitSecret(t, "postgres-credentials", func(s *corev1.Secret) bool { o := ownerUIDs(s); return len(o) == 1 && o["uid-pg-4"] })
	})

	t.Run("a Secret it did not create is left alone", func(t *testing.T) {
		orig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "foreign"}, StringData: map[string]string{"k": "v"}}
		if _, err := e.api.Client.CoreV1().Secrets(e.ns).Create(context.Background(), orig, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		so := providerclass.SecretObject{Field: "secretObjects[0]", SecretName: "foreign", Data: []providerclass.SecretObjectData{{ObjectName: "f", Key: "k"}}}
		plan := &providerclass.Plan{SecretObjects: []providerclass.SecretObject{so}}
		v := driver.PublishedVolume{VolumeID: "vol-f", Pod: driver.PodRef{Namespace: e.ns, Name: "pg-5", UID: "uid-pg-5"}}
		before := e.metricValue(t, "secretmount_sync_errors_total", map[string]string{"reason": "SecretNotOwned"})
		nodeA.sync.Published(v, plan, []providerclass.File{{Path: "f", Bytes: []byte("overwrite")}})
		eventually(t, "a SecretNotOwned error", func() (bool, string) {
			return e.metricValue(t, "secretmount_sync_errors_total", map[string]string{"reason": "SecretNotOwned"}) > before, ""
		})
		s, _ := e.secret(t, "foreign")
		if string(s.Data["k"]) != "v" || len(s.OwnerReferences) != 0 {
			t.Fatal("the foreign Secret was changed")
		}
	})

	t.Run("logs and metrics carry no value", func(t *testing.T) {
		e.assertNoValues(t, testPassword, testAccessKey, testSecretKey, "overwrite")
	})
}

func keysString(m map[string]bool) string {
	out := ""
	for k := range m {
		out += k + " "
	}
	return out
}
