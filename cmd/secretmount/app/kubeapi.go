package app

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
)

// kubeAPIOptions are the client-side request limits of a command's Kubernetes clients.
// client-go's own default, used when a rest.Config leaves them zero, is 5 requests per
// second with a burst of 10: low enough to hold a burst of mounts' Secret writes or new
// SecretSyncs for tens of seconds, and silent about it. Each command states its own.
type kubeAPIOptions struct {
	qps   float32
	burst int
}

func (o *kubeAPIOptions) addFlags(f *pflag.FlagSet, who string, qps float32, burst int) {
	f.Float32Var(&o.qps, "kube-api-qps", qps,
		"requests per second each Kubernetes client of the "+who+" may send; negative turns the client-side limit off and leaves it to the API server's priority and fairness")
	f.IntVar(&o.burst, "kube-api-burst", burst, "requests each Kubernetes client of the "+who+" may send at once above --kube-api-qps")
}

func (o *kubeAPIOptions) validate() error {
	// Zero would silently fall back to client-go's 5 requests per second.
	if o.qps == 0 {
		return fmt.Errorf("--kube-api-qps must be positive, or negative to turn the client-side limit off; got 0")
	}
	if o.qps > 0 && o.burst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1 while --kube-api-qps is positive, got %d", o.burst)
	}
	return nil
}

func (o *kubeAPIOptions) apply(cfg *rest.Config) {
	cfg.QPS, cfg.Burst = o.qps, o.burst
}
