package app

import (
	"context"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/secretmount/secretmount/driver/registration"
)

// registrationOptions are the flags of the driver's built-in kubelet registration,
// which replaces the csi-node-driver-registrar sidecar when --registration-dir is set.
type registrationOptions struct {
	dir             string
	kubeletEndpoint string
}

func (o *registrationOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.dir, "registration-dir", "", "kubelet's plugin registration folder (<kubelet root>/plugins_registry) to register the driver with kubelet from this process; empty leaves registration to csi-node-driver-registrar")
	f.StringVar(&o.kubeletEndpoint, "kubelet-endpoint", "", "the CSI socket path as kubelet sees it, announced on registration; empty means the --endpoint path")
}

// server builds the registration server for the driver, or nil when it is off. It
// starts nothing.
func (o *registrationOptions) server(driverName, endpoint string, metrics prometheus.Registerer, log logr.Logger) (*registration.Server, error) {
	if o.dir == "" {
		return nil, nil
	}
	kubeletEndpoint := o.kubeletEndpoint
	if kubeletEndpoint == "" {
		kubeletEndpoint = endpoint
	}
	return registration.New(registration.Options{
		Dir:             o.dir,
		DriverName:      driverName,
		KubeletEndpoint: kubeletEndpoint,
		CSIEndpoint:     endpoint,
		Metrics:         metrics,
		Log:             log,
	})
}

// startRegistration runs rs beside the driver. A registration socket that cannot be
// served stops the driver (through stopDriver): kubelet would never call it, and a
// restart makes the fault visible. wait stops nothing; it returns once Run has
// returned, so the socket is gone and kubelet deregisters the driver.
func startRegistration(ctx context.Context, rs *registration.Server, stopDriver context.CancelFunc) (wait func() error) {
	if rs == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		err := rs.Run(ctx)
		if err != nil {
			stopDriver()
		}
		done <- err
	}()
	return func() error { return <-done }
}

// registrationReady answers /readyz: ready once kubelet has registered the driver, or
// always when the sidecar does the registration.
func registrationReady(rs *registration.Server) func() error {
	if rs == nil {
		return func() error { return nil }
	}
	return rs.Ready
}
