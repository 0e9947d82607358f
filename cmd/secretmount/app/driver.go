package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/sync"
)

func init() { subcommands = append(subcommands, newDriverCommand) }

// driverBackends add the built-in backends the driver fetches with. Each backend's
// registration file in this package appends one function, as to providerBackends and
// syncBackends.
var driverBackends []func(*provider.Registry) error

// Client-side limits of the driver's Kubernetes clients. The publish path reads only
// informer caches and writes nothing; what these bound is the node's share of reads on a
// cache miss and the Secret writes of mount-driven sync, where 500 volumes published at
// once under client-go's 5/s left mirrored Secrets waiting for minutes. Every node runs
// one driver, so this stays below the sync controller's limits.
const (
	defaultDriverKubeAPIQPS   = 50
	defaultDriverKubeAPIBurst = 100
)

// driverOptions are the flags of `secretmount driver`.
type driverOptions struct {
	endpoint             string
	driverName           string
	nodeID               string
	kubeconfig           string
	providerTimeout      time.Duration
	stateDir             string
	rotationEnabled      bool
	rotationPollInterval time.Duration
	syncEnabled          bool
	metricsAddr          string
	kubeAPI              kubeAPIOptions
	registration         registrationOptions
	runtime              runtimeOptions
	log                  logOptions
	external             externalProviderOptions
}

func newDriverCommand() *cobra.Command {
	o := &driverOptions{}
	cmd := &cobra.Command{
		Use:   "driver",
		Short: "Serve the CSI Identity and Node services: mount secrets into pods on this node",
		Long: `Serve CSI on a unix socket for kubelet. Pods name the driver in an inline csi volume with a
secretProviderClass attribute; each publish fetches the class's objects with the pod's own
ServiceAccount token and writes them to a tmpfs at the volume's target path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix socket)")
	f.StringVar(&o.driverName, "driver-name", driver.DefaultDriverName, "CSI driver name pods use in their volumes")
	f.StringVar(&o.nodeID, "node-id", "", "this node's name, returned by NodeGetInfo (required)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	f.DurationVar(&o.providerTimeout, "provider-timeout", driver.DefaultProviderTimeout, "bound on the backend calls of one publish or refresh")
	f.StringVar(&o.stateDir, "state-dir", "", "folder for the records of published volumes, so a restart keeps rotating them; empty keeps them in memory")
	f.BoolVar(&o.rotationEnabled, "enable-secret-rotation", false, "refresh every published volume each --rotation-poll-interval")
	f.DurationVar(&o.rotationPollInterval, "rotation-poll-interval", driver.DefaultRotationPollInterval, "how often published volumes are refreshed when rotation is on")
	f.BoolVar(&o.syncEnabled, "enable-secret-sync", true, "write the secretObjects of published volumes' classes to Kubernetes Secrets")
	f.StringVar(&o.metricsAddr, "metrics-addr", ":8095", `address of the Prometheus /metrics endpoint (and /readyz); "" or "0" disables it`)
	o.kubeAPI.addFlags(f, "driver", defaultDriverKubeAPIQPS, defaultDriverKubeAPIBurst)
	o.registration.addFlags(f)
	o.runtime.addFlags(f)
	o.log.addFlags(f)
	o.external.addFlags(cmd)
	return cmd
}

func (o *driverOptions) run(cmd *cobra.Command) error {
	log, err := o.log.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	ctrl.SetLogger(log)
	if o.nodeID == "" {
		return errors.New("--node-id is required")
	}
	if o.providerTimeout <= 0 || o.rotationPollInterval <= 0 {
		return fmt.Errorf("--provider-timeout (%s) and --rotation-poll-interval (%s) must be positive", o.providerTimeout, o.rotationPollInterval)
	}
	if err := o.kubeAPI.validate(); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("load the Kubernetes client configuration: %w", err)
	}
	o.kubeAPI.apply(cfg)
	stopRuntime, err := o.runtime.start(nodeGCPercent)
	if err != nil {
		return err
	}
	defer stopRuntime()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()

	builtin := provider.NewRegistry()
	for _, add := range driverBackends {
		if err := add(builtin); err != nil {
			return err
		}
	}
	reg, closeExternal, err := o.external.registry(builtin, o.providerTimeout)
	if err != nil {
		return err
	}
	defer closeExternal()

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	classes, err := driver.NewCacheClassGetter(cfg)
	if err != nil {
		return err
	}
	if err := classes.Start(ctx); err != nil {
		return err
	}
	d, err := driver.New(driver.Options{
		Endpoint:             o.endpoint,
		DriverName:           o.driverName,
		NodeID:               o.nodeID,
		ProviderTimeout:      o.providerTimeout,
		StateDir:             o.stateDir,
		RotationEnabled:      o.rotationEnabled,
		RotationPollInterval: o.rotationPollInterval,
		Classes:              classes,
		Providers:            reg,
		Metrics:              metrics,
		Log:                  log.WithName("driver"),
		Version:              Version(),
	})
	if err != nil {
		return err
	}
	if o.syncEnabled {
		ms, stop, err := sync.MountSyncFor(cfg, metrics, log.WithName("mount-sync"))
		if err != nil {
			return err
		}
		defer stop()
		d.AddObserver(ms)
		go func() {
			if err := ms.Run(ctx, 4); err != nil {
				log.Error(err, "mount sync stopped")
			}
		}()
	}
	rs, err := o.registration.server(o.driverName, o.endpoint, metrics, log.WithName("registration"))
	if err != nil {
		return err
	}
	if o.metricsAddr != "" && o.metricsAddr != "0" {
		stop, err := serveMetrics(o.metricsAddr, metrics, registrationReady(rs))
		if err != nil {
			return err
		}
		defer stop()
	}
	waitRegistration := startRegistration(ctx, rs, cancel)
	err = d.Run(ctx)
	cancel()
	return errors.Join(err, waitRegistration())
}

// serveMetrics serves /metrics, and /readyz answering with ready, on addr until the
// returned stop is called.
func serveMetrics(addr string, g prometheus.Gatherer, ready func() error) (func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
