package registration

import (
	"context"
	"net"
	"time"
)

// csiPollInterval is how often Run tries the CSI socket while the driver starts.
const csiPollInterval = 100 * time.Millisecond

// waitCSI returns once the CSI socket accepts a connection (true) or ctx ends (false).
func (s *Server) waitCSI(ctx context.Context) bool {
	if s.opts.CSIEndpoint == "" {
		return true
	}
	tick := time.NewTicker(csiPollInterval)
	defer tick.Stop()
	for logged := false; ; logged = true {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", s.opts.CSIEndpoint)
		if err == nil {
			_ = conn.Close()
			return true
		}
		if !logged {
			s.opts.Log.Info("waiting for the CSI socket before registering with kubelet", "endpoint", s.opts.CSIEndpoint, "reason", err.Error())
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
