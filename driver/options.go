package driver

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/mount-utils"

	"github.com/secretmount/secretmount/provider"
)

// Defaults of Options.
const (
	DefaultDriverName           = "secrets-store.csi.k8s.io"
	DefaultProviderTimeout      = 30 * time.Second
	DefaultRotationPollInterval = 2 * time.Minute
)

// Options configure a Driver.
type Options struct {
	// Endpoint is the CSI socket: "unix:///csi/csi.sock" or a plain path.
	Endpoint string
	// DriverName is returned by GetPluginInfo; pods name it in their csi volumes.
	DriverName string
	// NodeID is returned by NodeGetInfo.
	NodeID string
	// ProviderTimeout bounds every backend call of one publish or refresh.
	ProviderTimeout time.Duration
	// StateDir holds one record per published volume so a restart keeps rotating them;
	// "" keeps the table in memory only.
	StateDir string
	// RotationEnabled starts the poller that refreshes every published volume each
	// RotationPollInterval.
	RotationEnabled      bool
	RotationPollInterval time.Duration

	// Classes serves SecretProviderClasses (an informer cache in production).
	Classes ClassGetter
	// Providers are the backends, by spec.provider.
	Providers *provider.Registry
	// Mounter mounts the tmpfs; nil means mount(2) and umount2(2) directly.
	Mounter mount.Interface
	// Metrics registers the driver's metrics; nil registers none.
	Metrics prometheus.Registerer
	Log     logr.Logger
	// Version is returned by GetPluginInfo.
	Version string
}

func (o *Options) complete() error {
	if o.DriverName == "" {
		o.DriverName = DefaultDriverName
	}
	if o.ProviderTimeout == 0 {
		o.ProviderTimeout = DefaultProviderTimeout
	}
	if o.RotationPollInterval == 0 {
		o.RotationPollInterval = DefaultRotationPollInterval
	}
	if o.Mounter == nil {
		o.Mounter = newSyscallMounter()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	var errs []error
	if o.Endpoint == "" {
		errs = append(errs, errors.New("endpoint is required"))
	}
	if o.NodeID == "" {
		errs = append(errs, errors.New("node id is required"))
	}
	if o.ProviderTimeout < 0 {
		errs = append(errs, fmt.Errorf("provider timeout %s is negative", o.ProviderTimeout))
	}
	if o.RotationPollInterval < 0 {
		errs = append(errs, fmt.Errorf("rotation poll interval %s is negative", o.RotationPollInterval))
	}
	if o.Classes == nil {
		errs = append(errs, errors.New("a SecretProviderClass getter is required"))
	}
	if o.Providers == nil {
		errs = append(errs, errors.New("a provider registry is required"))
	}
	return errors.Join(errs...)
}
