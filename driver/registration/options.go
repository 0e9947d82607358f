package registration

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	DefaultRetryDelay    = 10 * time.Second
	DefaultMaxRetryDelay = 5 * time.Minute
	DefaultCheckInterval = 10 * time.Second
)

// maxSocketPath is the longest path a unix socket address can hold on Linux
// (sun_path is 108 bytes, one of them the terminating NUL).
const maxSocketPath = 107

// supportedVersions are the CSI versions announced to kubelet. kubelet's CSI plugin
// handler accepts 1.x.
var supportedVersions = []string{"1.0.0"}

// Options configure a Server.
type Options struct {
	// Dir is kubelet's plugin registration folder (<kubelet root>/plugins_registry, as
	// this process sees it). The socket is <Dir>/<DriverName>-reg.sock.
	Dir string
	// DriverName is the CSI driver name kubelet registers.
	DriverName string
	// KubeletEndpoint is the CSI socket path as kubelet sees it, which differs from the
	// driver's own path when the driver runs in a container. A "unix://" prefix is
	// accepted and dropped: kubelet dials a plain path.
	KubeletEndpoint string
	// CSIEndpoint is the CSI socket as this process sees it. When set, Run creates the
	// registration socket only once it accepts connections: kubelet calls NodeGetInfo
	// on it as part of the registration, and a refusal would cost a back-off.
	CSIEndpoint string
	// RetryDelay is the first wait before the socket is re-created after kubelet
	// reported a failed registration; it doubles on each further failure up to
	// MaxRetryDelay, and starts over once kubelet reports success.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// CheckInterval is how often the socket file is checked for; a deleted one is
	// re-created.
	CheckInterval time.Duration
	// Metrics registers the registration metrics; nil registers none.
	Metrics prometheus.Registerer
	Log     logr.Logger
}

func (o *Options) complete() error {
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = max(DefaultMaxRetryDelay, o.RetryDelay)
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	o.KubeletEndpoint = strings.TrimPrefix(o.KubeletEndpoint, "unix://")
	o.CSIEndpoint = strings.TrimPrefix(o.CSIEndpoint, "unix://")
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("registration dir is required"))
	}
	switch {
	case o.DriverName == "":
		errs = append(errs, errors.New("driver name is required"))
	case strings.ContainsRune(o.DriverName, '/') || strings.HasPrefix(o.DriverName, "."):
		// kubelet ignores sockets whose names start with a dot.
		errs = append(errs, fmt.Errorf("driver name %q cannot name a socket file: no '/' and no leading '.'", o.DriverName))
	}
	switch {
	case o.KubeletEndpoint == "":
		errs = append(errs, errors.New("kubelet endpoint is required"))
	case strings.Contains(o.KubeletEndpoint, "://"):
		errs = append(errs, fmt.Errorf("kubelet endpoint %q: only unix sockets are supported", o.KubeletEndpoint))
	case !filepath.IsAbs(o.KubeletEndpoint):
		errs = append(errs, fmt.Errorf("kubelet endpoint %q must be an absolute path", o.KubeletEndpoint))
	}
	if o.RetryDelay <= 0 || o.MaxRetryDelay < o.RetryDelay {
		errs = append(errs, fmt.Errorf("retry delay %s must be positive and at most the max retry delay %s", o.RetryDelay, o.MaxRetryDelay))
	}
	if o.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("check interval %s is negative", o.CheckInterval))
	}
	if len(errs) == 0 {
		if p := o.socketPath(); len(p) > maxSocketPath {
			errs = append(errs, fmt.Errorf("registration socket path %s is %d bytes, longer than the %d a unix socket allows", p, len(p), maxSocketPath))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) socketPath() string {
	return filepath.Join(o.Dir, o.DriverName+"-reg.sock")
}
