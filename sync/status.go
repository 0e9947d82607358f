package sync

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

// outcome is what one sync of a SecretSync did.
type outcome struct {
	result writeResult // on success
	hash   string      // on success
	// reason is a v1alpha1 False reason; "" means success.
	reason  string
	message string // names the object and field, never a value
	// retry asks for another attempt soon: the failure may pass by itself.
	retry bool
}

// nextStatus is the status after out. changed is false when nothing needs writing: a poll
// that found everything in step after a success writes no status either.
func nextStatus(old v1alpha1.SecretSyncStatus, generation int64, out outcome, now time.Time) (v1alpha1.SecretSyncStatus, bool) {
	st := *old.DeepCopy()
	created := meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionCreate)
	condType := v1alpha1.ConditionUpdate
	if !created {
		condType = v1alpha1.ConditionCreate
	}
	if out.reason != "" {
		changed := meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: condType, Status: metav1.ConditionFalse, Reason: out.reason,
			Message: out.message, ObservedGeneration: generation,
		})
		return st, changed
	}
	if !created {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionCreate, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonCreateSucceeded,
			Message: "The secret was created successfully.", ObservedGeneration: generation,
		})
		st.SyncHash = out.hash
		st.LastSuccessfulSyncTime = &metav1.Time{Time: now}
		return st, true
	}
	valueChange := out.result != resultUnchanged || out.hash != st.SyncHash
	prev := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionUpdate)
	if !valueChange && (prev == nil || prev.Status == metav1.ConditionTrue) {
		return old, false
	}
	cond := metav1.Condition{
		Type: v1alpha1.ConditionUpdate, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNoValueChange,
		Message: "The secret is in step with the provider; no value changed.", ObservedGeneration: generation,
	}
	if valueChange {
		cond.Reason = v1alpha1.ReasonValueChangeOrForceUpdateDetected
		cond.Message = "The secret was updated: a value change or a force update was detected."
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	st.SyncHash = out.hash
	st.LastSuccessfulSyncTime = &metav1.Time{Time: now}
	return st, true
}
