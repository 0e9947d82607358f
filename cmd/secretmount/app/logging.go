package app

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// logOptions are the logging flags every long-running subcommand shares.
type logOptions struct {
	format    string
	verbosity int
}

func (o *logOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.format, "log-format", "text", "log format: text or json")
	f.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity: 0 logs changes and errors, 2 every CSI call, 4 and up details")
}

// logger builds the logger for w and routes klog (client-go, controller-runtime) to it,
// so one process writes one format.
func (o *logOptions) logger(w io.Writer) (logr.Logger, error) {
	if o.verbosity < 0 {
		return logr.Logger{}, fmt.Errorf("--v must not be negative, got %d", o.verbosity)
	}
	// logr's V(n) is slog level -n: a handler at level -v prints V(0) to V(v).
	hopts := &slog.HandlerOptions{Level: slog.Level(-o.verbosity)}
	var h slog.Handler
	switch o.format {
	case "text":
		h = slog.NewTextHandler(w, hopts)
	case "json":
		h = slog.NewJSONHandler(w, hopts)
	default:
		return logr.Logger{}, fmt.Errorf("--log-format must be text or json, got %q", o.format)
	}
	log := logr.FromSlogHandler(h)
	klog.SetLogger(log)
	return log, nil
}
