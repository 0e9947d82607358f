package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// secretSyncs is the SecretSync resource, whose status the sync controller writes.
var secretSyncs = schema.GroupVersionResource{Group: "secret-sync.x-k8s.io", Version: "v1alpha1", Resource: "secretsyncs"}

// recordEvents records, for the leak scan, every event the API server holds and the
// status of every SecretSync, before the server stops: these are what secretmount's
// controllers wrote where users read them.
func (a *APIServer) recordEvents() error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var b strings.Builder
	events, err := a.Client.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing events for the leak scan: %w", err)
	}
	for _, e := range events.Items {
		fmt.Fprintf(&b, "event %s/%s %s %s %s/%s: %s\n", e.Namespace, e.Name, e.Type, e.Reason,
			e.InvolvedObject.Kind, e.InvolvedObject.Name, strings.ReplaceAll(e.Message, "\n", `\n`))
	}
	syncs, err := a.Dynamic.Resource(secretSyncs).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, s := range syncs.Items {
			status, _, _ := unstructured.NestedFieldCopy(s.Object, "status")
			doc, err := json.Marshal(status)
			if err != nil {
				return fmt.Errorf("encoding the status of SecretSync %s/%s: %w", s.GetNamespace(), s.GetName(), err)
			}
			fmt.Fprintf(&b, "secretsync %s/%s status: %s\n", s.GetNamespace(), s.GetName(), doc)
		}
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		// No CRDs applied: there are no SecretSyncs.
	default:
		return fmt.Errorf("listing SecretSyncs for the leak scan: %w", err)
	}
	if b.Len() == 0 {
		return nil
	}
	return leakWrite(LeakEvents, "apiserver", ".txt", []byte(b.String()))
}

// recordProgramLogs copies the logs of a secretmount program's processes for the leak
// scan, after they stopped and before the instance's folder goes.
func (in *instance) recordProgramLogs() error {
	var errs []error
	for _, p := range in.procs {
		data, err := os.ReadFile(p.log)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the log of %s for the leak scan: %w", p.name, err))
			continue
		}
		errs = append(errs, leakWrite(LeakLogs, in.name+"-"+p.name, ".log", data))
	}
	return errors.Join(errs...)
}
