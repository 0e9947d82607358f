package registration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// Server serves the registration socket for one CSI driver.
type Server struct {
	opts   Options
	path   string
	status *status
	// wake tells the Run loop that kubelet reported a new outcome.
	wake chan struct{}
}

// New checks opts and builds a Server. It starts nothing.
func New(opts Options) (*Server, error) {
	if err := opts.complete(); err != nil {
		return nil, fmt.Errorf("kubelet registration options: %w", err)
	}
	m, err := newMetrics(opts.Metrics, opts.DriverName)
	if err != nil {
		return nil, err
	}
	return &Server{
		opts:   opts,
		path:   opts.socketPath(),
		status: &status{metrics: m},
		wake:   make(chan struct{}, 1),
	}, nil
}

// SocketPath is the registration socket kubelet watches for.
func (s *Server) SocketPath() string { return s.path }

// Status is the last outcome kubelet reported for the current socket.
func (s *Server) Status() Status { return s.status.get() }

// Ready is nil once kubelet has reported the driver registered, and otherwise says
// whether kubelet has not answered yet or what it refused.
func (s *Server) Ready() error { return s.status.get().ready(s.opts.DriverName) }

// Run serves the registration socket until ctx ends, then removes it so kubelet
// deregisters the driver. When kubelet reports a failed registration, Run keeps
// serving, and if kubelet has not reported success by the end of the back-off it
// re-creates the socket: kubelet registers a plugin again only when its socket is new.
// A socket someone deleted is re-created too, since kubelet deregisters the driver
// when its socket goes.
func (s *Server) Run(ctx context.Context) error {
	if !s.waitCSI(ctx) {
		return nil
	}
	delay := s.opts.RetryDelay
	for {
		again, err := s.serve(ctx, &delay)
		if err != nil || !again {
			return err
		}
	}
}

// serve serves one socket until ctx ends (false) or it has to be re-created (true):
// the back-off after a failed registration ran out, which doubles it, or the socket
// file is gone. A reported success resets the back-off to its start.
func (s *Server) serve(ctx context.Context, delay *time.Duration) (bool, error) {
	lis, err := listen(s.path)
	if err != nil {
		return false, err
	}
	// The file is removed below only while it is still this socket, not one another
	// process has put at the same path since.
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	own, err := os.Lstat(s.path)
	if err != nil {
		_ = lis.Close()
		return false, fmt.Errorf("stat kubelet registration socket: %w", err)
	}
	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, &service{s: s})
	s.status.set(Status{State: Pending})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		s.status.set(Status{State: Pending})
		if cur, err := os.Lstat(s.path); err == nil && os.SameFile(own, cur) {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.opts.Log.Error(err, "removing the kubelet registration socket", "socket", s.path)
			}
		}
	}()
	s.opts.Log.Info("serving kubelet registration", "driver", s.opts.DriverName, "socket", s.path, "endpoint", s.opts.KubeletEndpoint)

	check := time.NewTicker(s.opts.CheckInterval)
	defer check.Stop()
	var retry *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-errc:
			return false, fmt.Errorf("serve kubelet registration on %s: %w", s.path, err)
		case <-s.wake:
			switch st := s.status.get(); {
			case st.State == Failed && retry == nil:
				retry = time.NewTimer(*delay)
				retryC = retry.C
			case st.State == Registered:
				*delay = s.opts.RetryDelay
				if retry != nil {
					// kubelet retried on its own and succeeded.
					retry.Stop()
					retry, retryC = nil, nil
				}
			}
		case <-retryC:
			if s.status.get().State == Failed {
				s.opts.Log.Info("re-creating the kubelet registration socket so kubelet registers the driver again",
					"driver", s.opts.DriverName, "socket", s.path, "after", *delay)
				*delay = min(2**delay, s.opts.MaxRetryDelay)
				return true, nil
			}
			retry, retryC = nil, nil
		case <-check.C:
			if _, err := os.Lstat(s.path); errors.Is(err, os.ErrNotExist) {
				s.opts.Log.Info("the kubelet registration socket was deleted; re-creating it", "driver", s.opts.DriverName, "socket", s.path)
				return true, nil
			}
		}
	}
}

// listen opens the socket, replacing a stale one an earlier process left behind.
func listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale kubelet registration socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen for kubelet registration on %s: %w", path, err)
	}
	return lis, nil
}
