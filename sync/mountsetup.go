package sync

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MountSyncFor builds the MountSync a driver runs: Secrets written with its own
// credentials, Warning events recorded on the pods, metrics registered with reg. The
// caller registers the result with the driver (AddObserver) and runs it (Run); stop
// flushes the event broadcaster.
func MountSyncFor(cfg *rest.Config, reg prometheus.Registerer, log logr.Logger) (m *MountSync, stop func(), err error) {
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to build a Kubernetes client for mount sync: %w", err)
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, nil, err
	}
	classes, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to build a client for SecretProviderClasses: %w", err)
	}
	metrics, err := NewMetrics(reg)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to register mount sync metrics: %w", err)
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: clientset.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "secretmount-driver"})
	return NewMountSync(NewWriter(clientset), classes, recorder, metrics, log), broadcaster.Shutdown, nil
}
