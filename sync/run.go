package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/provider"
)

// DefaultRotationPollInterval is the upstream default of --rotation-poll-interval.
const DefaultRotationPollInterval = 2 * time.Minute

// DefaultMaxConcurrentReconciles is how many SecretSyncs are synced at once. Most of a
// sync is waiting (TokenRequest, backend, Secret apply, status update), so a few workers
// turn a burst of new SecretSyncs from a queue of round trips into overlapping ones; the
// fetches they share are still made once (tickFetcher, TokenRequester).
const DefaultMaxConcurrentReconciles = 8

// Config is what the SecretSync controller needs besides a manager.
type Config struct {
	// Registry holds the backends, keyed by spec.provider.
	Registry *provider.Registry
	// RotationPollInterval is how often every SecretSync is fetched again; zero means
	// DefaultRotationPollInterval.
	RotationPollInterval time.Duration
	// Namespace limits the controller to one namespace; "" means all.
	Namespace string
	// ControllerName is matched against spec.secretSyncControllerName; "" means "secretmount".
	ControllerName string
	// Metrics, when nil, are registered with controller-runtime's registry.
	Metrics *Metrics
	// MaxConcurrentReconciles is how many SecretSyncs are synced at once (never two
	// passes of one SecretSync); zero means DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
}

// Scheme returns a scheme with the types the sync reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, secretsstorev1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetupWithManager adds the SecretSync controller and its rotation to mgr.
func SetupWithManager(mgr ctrl.Manager, cfg Config) error {
	_, err := setup(mgr, cfg)
	return err
}

// setup is SetupWithManager, returning the rotation so tests can tick it.
func setup(mgr ctrl.Manager, cfg Config) (*rotation, error) {
	if cfg.Registry == nil {
		return nil, errors.New("sync: no provider registry")
	}
	if cfg.RotationPollInterval <= 0 {
		cfg.RotationPollInterval = DefaultRotationPollInterval
	}
	if cfg.ControllerName == "" {
		cfg.ControllerName = FieldManager
	}
	if cfg.MaxConcurrentReconciles < 0 {
		return nil, fmt.Errorf("sync: MaxConcurrentReconciles must not be negative, got %d", cfg.MaxConcurrentReconciles)
	}
	if cfg.MaxConcurrentReconciles == 0 {
		cfg.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if cfg.Metrics == nil {
		m, err := NewMetrics(ctrlmetrics.Registry)
		if err != nil {
			return nil, fmt.Errorf("failed to register sync metrics: %w", err)
		}
		cfg.Metrics = m
	}
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("failed to build a Kubernetes client: %w", err)
	}
	fetcher := newTickFetcher(cfg.Registry, cfg.Metrics)
	c := &Controller{
		client:     mgr.GetClient(),
		writer:     NewWriter(clientset),
		tokens:     NewTokenRequester(clientset),
		fetcher:    fetcher,
		metrics:    cfg.Metrics,
		events:     mgr.GetEventRecorderFor("secretmount-sync"), //nolint:staticcheck // the events API recorder needs a different call shape; this one is stable
		now:        time.Now,
		name:       cfg.ControllerName,
		retryAfter: min(10*time.Second, cfg.RotationPollInterval),
	}
	ticks := make(chan event.GenericEvent)
	rot := &rotation{reader: mgr.GetClient(), fetcher: fetcher, interval: cfg.RotationPollInterval, namespace: cfg.Namespace, out: ticks}
	if err := mgr.Add(rot); err != nil {
		return nil, err
	}
	return rot, ctrl.NewControllerManagedBy(mgr).
		Named("secretsync").
		WithOptions(controller.Options{MaxConcurrentReconciles: cfg.MaxConcurrentReconciles}).
		For(&v1alpha1.SecretSync{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&secretsstorev1.SecretProviderClass{}, handler.EnqueueRequestsFromMapFunc(usersOf(mgr.GetClient()))).
		WatchesRawSource(source.Channel(ticks, &handler.EnqueueRequestForObject{})).
		Complete(c)
}

// usersOf maps a SecretProviderClass to the SecretSyncs of its namespace that name it.
func usersOf(reader client.Reader) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list v1alpha1.SecretSyncList
		if err := reader.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil // the next rotation tick picks them up
		}
		var reqs []reconcile.Request
		for _, ss := range list.Items {
			if ss.Spec.SecretProviderClassName == obj.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ss)})
			}
		}
		return reqs
	}
}

// Options are the settings of `secretmount sync`.
type Options struct {
	Config
	RestConfig *rest.Config
	// MetricsAddress serves /metrics; "0" disables it.
	MetricsAddress string
	// HealthAddress serves /healthz and /readyz; "0" disables it.
	HealthAddress           string
	LeaderElection          bool
	LeaderElectionID        string
	LeaderElectionNamespace string
}

// Run runs the SecretSync controller until ctx ends.
func Run(ctx context.Context, opts Options) error {
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	mgrOpts := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddress},
		HealthProbeBindAddress:  opts.HealthAddress,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        opts.LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
	}
	if opts.Namespace != "" {
		mgrOpts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}}}
	}
	mgr, err := ctrl.NewManager(opts.RestConfig, mgrOpts)
	if err != nil {
		return fmt.Errorf("failed to create the sync manager: %w", err)
	}
	if err := SetupWithManager(mgr, opts.Config); err != nil {
		return err
	}
	if opts.HealthAddress != "" && opts.HealthAddress != "0" {
		if err := mgr.AddHealthzCheck("ping", func(_ *http.Request) error { return nil }); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("ping", func(_ *http.Request) error { return nil }); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
