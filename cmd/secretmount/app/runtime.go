package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/pflag"
)

// nodeGCPercent is the garbage collection target of the commands that run on every node
// (driver, provider) when GOGC is not set: the heap may grow to 1.5 times the live data
// instead of Go's default 2 times. Their live heap is small (the driver's is about
// 10 MiB with 500 volumes published), so the trade is a little more GC work for less
// memory on every node: with 500 volumes published the driver's anonymous memory was
// 19 MiB instead of 23 MiB.
const nodeGCPercent = 50

// runtimeOptions are the Go runtime settings of a long-running command.
type runtimeOptions struct {
	profilingAddr string
}

func (o *runtimeOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.profilingAddr, "profiling-addr", "", `address of the Go profiling endpoint /debug/pprof/, e.g. "127.0.0.1:6060"; "" disables it`)
}

// start applies the GC target unless GOGC says otherwise and serves profiles when asked;
// the returned stop ends the profiling endpoint.
func (o *runtimeOptions) start(gcPercent int) (stop func(), err error) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	if o.profilingAddr == "" {
		return func() {}, nil
	}
	lis, err := net.Listen("tcp", o.profilingAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for profiling on %s: %w", o.profilingAddr, err)
	}
	return serveProfiling(lis), nil
}

// serveProfiling serves Go's runtime profiles on lis until the returned stop is called.
// Profiles hold names and stack traces, not secret values, but they are for the
// operator only: bind it to loopback and reach it with kubectl port-forward.
func serveProfiling(lis net.Listener) func() {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}
