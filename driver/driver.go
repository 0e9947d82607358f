package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// Driver is the CSI Identity and Node server.
type Driver struct {
	opts    Options
	table   *table
	locks   keyedMutex
	state   stateStore
	metrics *metrics
}

// New checks opts and builds a Driver. It starts nothing.
func New(opts Options) (*Driver, error) {
	if err := opts.complete(); err != nil {
		return nil, fmt.Errorf("driver options: %w", err)
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	return &Driver{opts: opts, table: newTable(), state: stateStore{dir: opts.StateDir}, metrics: m}, nil
}

// AddObserver registers o to be told about content changes of published volumes.
func (d *Driver) AddObserver(o Observer) { d.table.addObserver(o) }

// Volumes lists the published volumes, sorted by target path.
func (d *Driver) Volumes() []PublishedVolume {
	vs := d.table.list()
	out := make([]PublishedVolume, len(vs))
	for i, v := range vs {
		out[i] = v.PublishedVolume
	}
	return out
}

// Run restores the volume table from StateDir, serves CSI on the endpoint and, when
// enabled, rotates published volumes, until ctx ends. It returns nil on a clean stop.
func (d *Driver) Run(ctx context.Context) error {
	d.restore()
	lis, err := listen(d.opts.Endpoint)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(d.logCalls))
	csi.RegisterIdentityServer(srv, &identityServer{d: d})
	csi.RegisterNodeServer(srv, &nodeServer{d: d})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if d.opts.RotationEnabled {
		rotated := make(chan struct{})
		go func() { defer close(rotated); d.rotate(ctx) }()
		// Run returns only after a refresh in progress has finished its write.
		defer func() { <-rotated }()
		defer cancel()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	d.opts.Log.Info("serving CSI", "endpoint", d.opts.Endpoint, "driver", d.opts.DriverName, "node", d.opts.NodeID,
		"rotation", d.opts.RotationEnabled, "rotationPollInterval", d.opts.RotationPollInterval)

	select {
	case err := <-errc:
		return fmt.Errorf("serve CSI on %s: %w", d.opts.Endpoint, err)
	case <-ctx.Done():
	}
	// A publish in flight is allowed to finish (it holds a mount half made); a stuck
	// one is cut off so the process can stop.
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.opts.ProviderTimeout + 5*time.Second):
		srv.Stop()
	}
	return nil
}

// listen opens the unix socket, replacing a stale one left by an earlier process.
func listen(endpoint string) (net.Listener, error) {
	path := endpoint
	if rest, ok := strings.CutPrefix(endpoint, "unix://"); ok {
		path = rest
	} else if strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("endpoint %q: only unix sockets are supported", endpoint)
	}
	if path == "" {
		return nil, fmt.Errorf("endpoint %q has no socket path", endpoint)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return lis, nil
}

// logCalls logs each CSI call by method and outcome. Requests are not logged: their
// volume context carries tokens.
func (d *Driver) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	if err != nil {
		d.opts.Log.Error(err, "CSI call failed", "method", info.FullMethod, "duration", time.Since(start))
	} else {
		d.opts.Log.V(2).Info("CSI call", "method", info.FullMethod, "duration", time.Since(start))
	}
	return resp, err
}
