package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// eventRecorder is the part of client-go's record.EventRecorder the sync uses.
type eventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Controller reconciles SecretSyncs: fetch as the SecretSync's ServiceAccount, render,
// write the Secret, report in status, events and metrics.
type Controller struct {
	client  client.Client
	writer  *Writer
	tokens  provider.TokenSource
	fetcher *tickFetcher
	metrics *Metrics
	events  eventRecorder
	now     func() time.Time
	// name is this controller's name for spec.secretSyncControllerName; SecretSyncs that
	// name another controller are left alone.
	name string
	// retryAfter is how soon a failure that may pass (backend outage) is tried again.
	retryAfter time.Duration
}

// Reconcile syncs one SecretSync.
func (c *Controller) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ss v1alpha1.SecretSync
	if err := c.client.Get(ctx, req.NamespacedName, &ss); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ss.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the Secret is owned by the SecretSync and goes with it
	}
	if n := ss.Spec.SecretSyncControllerName; n != "" && n != c.name {
		return ctrl.Result{}, nil
	}
	start := c.now()
	out := c.sync(ctx, &ss)
	c.metrics.observe(sourceSecretSync, out.result, out.reason, c.now().Sub(start).Seconds())
	c.report(ctx, &ss, out)

	st, changed := nextStatus(ss.Status, ss.Generation, out, c.now())
	if changed {
		ss.Status = st
		if err := c.client.Status().Update(ctx, &ss); err != nil {
			// A conflict means the SecretSync changed meanwhile and is queued again.
			return ctrl.Result{}, fmt.Errorf("failed to update status of SecretSync %s: %w", req.NamespacedName, err)
		}
	}
	if out.retry {
		return ctrl.Result{RequeueAfter: c.retryAfter}, nil
	}
	return ctrl.Result{}, nil
}

// report emits the log line of an outcome, and for a failure a Warning event. Neither
// carries a value. A success has no event: its status condition already says it, and an
// event would be a third API write per SecretSync (after the Secret and the status) in
// every burst, as upstream's controller also does without.
func (c *Controller) report(ctx context.Context, ss *v1alpha1.SecretSync, out outcome) {
	logger := log.FromContext(ctx)
	secret := ss.Namespace + "/" + ss.Name
	switch {
	case out.reason != "":
		c.events.Eventf(ss, corev1.EventTypeWarning, out.reason, "secret %s not synced: %s", secret, out.message)
		logger.Info("secret not synced", "secret", secret, "reason", out.reason, "message", out.message)
	case out.result == resultCreated:
		logger.Info("secret created", "secret", secret)
	case out.result == resultUpdated:
		logger.Info("secret updated", "secret", secret)
	}
}

// sync does the work of one pass; every failure comes back as an outcome with a reason.
func (c *Controller) sync(ctx context.Context, ss *v1alpha1.SecretSync) outcome {
	name := ss.Namespace + "/" + ss.Name
	fail := func(reason, format string, args ...any) outcome {
		return outcome{reason: reason, message: fmt.Sprintf("SecretSync %s: ", name) + fmt.Sprintf(format, args...)}
	}
	if e := validateSecretSync(ss); e != nil {
		return fail(e.Reason, "%s", e.Error())
	}

	var spc secretsstorev1.SecretProviderClass
	spcKey := types.NamespacedName{Namespace: ss.Namespace, Name: ss.Spec.SecretProviderClassName}
	if err := c.client.Get(ctx, spcKey, &spc); err != nil {
		if apierrors.IsNotFound(err) {
			return fail(v1alpha1.ReasonControllerSPCError, "spec.secretProviderClassName: SecretProviderClass %s not found", spcKey)
		}
		out := fail(v1alpha1.ReasonControllerInternalError, "failed to read SecretProviderClass %s: %v", spcKey, err)
		out.retry = true
		return out
	}
	plan, err := providerclass.NewPlan(&spc, providerclass.Mount{Namespace: ss.Namespace, ServiceAccount: ss.Spec.ServiceAccountName})
	if err != nil {
		return fail(v1alpha1.ReasonControllerSPCError, "%v", err)
	}

	id, err := identity(ctx, c.tokens, ss.Namespace, ss.Spec.ServiceAccountName, plan)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fail(v1alpha1.ReasonUserInputValidationFailed, "spec.serviceAccountName: ServiceAccount %s/%s not found", ss.Namespace, ss.Spec.ServiceAccountName)
		}
		out := fail(v1alpha1.ReasonControllerInternalError, "%v", err)
		out.retry = true
		return out
	}
	key := fetchKey{identity: id.Key(), classUID: spc.UID, classGeneration: spc.Generation, force: ss.Spec.ForceSynchronization}
	contents, err := c.fetcher.fetch(ctx, key, plan, id)
	if err != nil {
		out := fail(v1alpha1.ReasonProviderError, "failed to fetch the objects of SecretProviderClass %s: %v", spcKey, err)
		if errors.Is(err, provider.ErrUnknownProvider) {
			out.reason = v1alpha1.ReasonControllerSPCError
		} else {
			out.retry = !errors.Is(err, provider.ErrInvalid)
		}
		return out
	}
	files, err := plan.Render(contents)
	if err != nil {
		return fail(v1alpha1.ReasonControllerSPCError, "failed to render the files of SecretProviderClass %s: %v", spcKey, err)
	}
	content, specErr := secretSyncContent(ss, fileMap(files))
	if specErr != nil {
		return fail(specErr.Reason, "%s", specErr.Error())
	}
	hash := syncHash(hashInputs{
		SyncUID: ss.UID, SyncGeneration: ss.Generation, ForceSynchronization: ss.Spec.ForceSynchronization,
		ClassUID: spc.UID, ClassGeneration: spc.Generation,
	}, content)

	result, err := c.writer.apply(ctx, content)
	if err != nil {
		out := fail(writeReason(err), "%v", err)
		out.retry = out.reason == v1alpha1.ReasonUnknownError
		return out
	}
	return outcome{result: result, hash: hash}
}

// writeReason classifies a failed Secret write into a condition reason.
func writeReason(err error) string {
	switch {
	case errors.Is(err, errNotOwned):
		return v1alpha1.ReasonSecretNotOwned
	case apierrors.IsInvalid(err):
		return v1alpha1.ReasonUserInputValidationFailed
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy"):
		return v1alpha1.ReasonValidatingAdmissionPolicyCheckFailed
	}
	return v1alpha1.ReasonUnknownError
}
