package app

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/sync"
)

func init() { subcommands = append(subcommands, newSyncCommand) }

// syncOptions are the flags of `secretmount sync`.
type syncOptions struct {
	kubeconfig              string
	namespace               string
	rotationPollInterval    time.Duration
	metricsAddr             string
	healthAddr              string
	leaderElect             bool
	leaderElectionNamespace string
	leaderElectionID        string
	controllerName          string
	maxConcurrentReconciles int
	kubeAPI                 kubeAPIOptions
	log                     logOptions
}

// Client-side limits of each of the sync's Kubernetes clients. A new SecretSync costs
// the Secret client two requests (a read, then the apply) and the status client one, so
// a burst of 200 new SecretSyncs is 400 requests of one client: the burst lets the first
// half out at once and the rest at 100/s, about two seconds in all, while a runaway loop
// is still held far below what one API server serves. The API server's priority and
// fairness stays the real guard.
const (
	defaultKubeAPIQPS   = 100
	defaultKubeAPIBurst = 200
)

// syncBackends add the backends the sync controller fetches with; the backend
// registrations of this package append to it.
var syncBackends []func(*provider.Registry) error

func newSyncCommand() *cobra.Command {
	o := &syncOptions{}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Run the SecretSync controller: write Kubernetes Secrets from secret stores without a mounting pod",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	f.StringVar(&o.namespace, "namespace", "", "serve SecretSyncs of this namespace only; empty means all namespaces")
	f.DurationVar(&o.rotationPollInterval, "rotation-poll-interval", sync.DefaultRotationPollInterval, "how often every SecretSync is fetched again")
	f.StringVar(&o.metricsAddr, "metrics-addr", ":8080", `address of the Prometheus /metrics endpoint; "0" disables it`)
	f.StringVar(&o.healthAddr, "health-addr", ":8081", `address of /healthz and /readyz; "0" disables them`)
	f.BoolVar(&o.leaderElect, "leader-elect", false, "run only while holding the leader lease, so several replicas can run")
	f.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader lease; empty means the pod's own")
	f.StringVar(&o.leaderElectionID, "leader-election-id", "secretmount-sync", "name of the leader lease")
	f.StringVar(&o.controllerName, "controller-name", sync.FieldManager, "serve SecretSyncs whose spec.secretSyncControllerName is empty or this")
	f.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", sync.DefaultMaxConcurrentReconciles,
		"how many SecretSyncs are synced at once (never two passes of one); fetches of one ServiceAccount and class are shared however many run")
	o.kubeAPI.addFlags(f, "controller", defaultKubeAPIQPS, defaultKubeAPIBurst)
	o.log.addFlags(f)
	return cmd
}

func (o *syncOptions) run(cmd *cobra.Command) error {
	if o.rotationPollInterval <= 0 {
		return fmt.Errorf("--rotation-poll-interval must be positive, got %s", o.rotationPollInterval)
	}
	if o.maxConcurrentReconciles < 1 {
		return fmt.Errorf("--max-concurrent-reconciles must be at least 1, got %d", o.maxConcurrentReconciles)
	}
	if err := o.kubeAPI.validate(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to load the Kubernetes client configuration: %w", err)
	}
	o.kubeAPI.apply(cfg)
	log, err := o.log.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	ctrl.SetLogger(log.WithName("sync"))
	reg := provider.NewRegistry()
	for _, add := range syncBackends {
		if err := add(reg); err != nil {
			return err
		}
	}
	return sync.Run(cmd.Context(), sync.Options{
		Config: sync.Config{
			Registry:                reg,
			RotationPollInterval:    o.rotationPollInterval,
			Namespace:               o.namespace,
			ControllerName:          o.controllerName,
			MaxConcurrentReconciles: o.maxConcurrentReconciles,
		},
		RestConfig:              cfg,
		MetricsAddress:          o.metricsAddr,
		HealthAddress:           o.healthAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        o.leaderElectionID,
		LeaderElectionNamespace: o.leaderElectionNamespace,
	})
}
