package sync

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

func TestNextStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var st v1alpha1.SecretSyncStatus
	step := func(out outcome, wantChanged bool, wantType string, wantStatus metav1.ConditionStatus, wantReason string) {
		t.Helper()
		t0 = t0.Add(time.Minute)
		next, changed := nextStatus(st, 1, out, t0)
		if changed != wantChanged {
			t.Fatalf("changed = %v, want %v", changed, wantChanged)
		}
		if !changed {
			return
		}
		c := meta.FindStatusCondition(next.Conditions, wantType)
		if c == nil || c.Status != wantStatus || c.Reason != wantReason {
			t.Fatalf("condition %s = %+v, want %s %s", wantType, c, wantStatus, wantReason)
		}
		st = next
	}
	// A first failure is a False Create condition; nothing synced yet.
	step(outcome{reason: v1alpha1.ReasonProviderError, message: "down"}, true, v1alpha1.ConditionCreate, metav1.ConditionFalse, v1alpha1.ReasonProviderError)
	if st.LastSuccessfulSyncTime != nil {
		t.Fatal("a failure set lastSuccessfulSyncTime")
	}
	// The same failure again writes nothing.
	step(outcome{reason: v1alpha1.ReasonProviderError, message: "down"}, false, "", "", "")
	step(outcome{result: resultCreated, hash: "h1"}, true, v1alpha1.ConditionCreate, metav1.ConditionTrue, v1alpha1.ReasonCreateSucceeded)
	if st.SyncHash != "h1" || st.LastSuccessfulSyncTime == nil {
		t.Fatalf("status %+v", st)
	}
	// A poll with nothing changed writes nothing at all.
	step(outcome{result: resultUnchanged, hash: "h1"}, false, "", "", "")
	step(outcome{result: resultUpdated, hash: "h2"}, true, v1alpha1.ConditionUpdate, metav1.ConditionTrue, v1alpha1.ReasonValueChangeOrForceUpdateDetected)
	step(outcome{result: resultUnchanged, hash: "h2"}, false, "", "", "")
	// An outage after creation is a False Update; Create stays True.
	step(outcome{reason: v1alpha1.ReasonProviderError, message: "down"}, true, v1alpha1.ConditionUpdate, metav1.ConditionFalse, v1alpha1.ReasonProviderError)
	if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionCreate) || st.SyncHash != "h2" {
		t.Fatalf("status after outage %+v", st)
	}
	// Recovery with nothing changed is recorded once.
	step(outcome{result: resultUnchanged, hash: "h2"}, true, v1alpha1.ConditionUpdate, metav1.ConditionTrue, v1alpha1.ReasonNoValueChange)
	step(outcome{result: resultUnchanged, hash: "h2"}, false, "", "", "")
}
