package registration

import (
	"context"
	"errors"

	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// service answers kubelet on the registration socket.
type service struct {
	registerapi.UnimplementedRegistrationServer
	s *Server
}

// GetInfo tells kubelet what to register: a CSI plugin of this name, reachable at the
// CSI socket path kubelet sees.
func (v *service) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	o := v.s.opts
	o.Log.V(2).Info("kubelet asked for plugin info", "driver", o.DriverName, "endpoint", o.KubeletEndpoint)
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              o.DriverName,
		Endpoint:          o.KubeletEndpoint,
		SupportedVersions: append([]string(nil), supportedVersions...),
	}, nil
}

// NotifyRegistrationStatus records kubelet's verdict. A failure is answered normally:
// the Run loop re-creates the socket after a back-off rather than the process exiting
// as the sidecar does, so published volumes keep being served meanwhile.
func (v *service) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	o := v.s.opts
	next := Status{State: Registered}
	if !st.PluginRegistered {
		msg := st.Error
		if msg == "" {
			msg = "no reason given"
		}
		next = Status{State: Failed, Error: msg}
		o.Log.Error(errors.New(msg), "kubelet failed to register the CSI driver; the registration socket will be re-created",
			"driver", o.DriverName, "socket", v.s.path)
	} else {
		o.Log.Info("kubelet registered the CSI driver", "driver", o.DriverName, "endpoint", o.KubeletEndpoint)
	}
	v.s.status.set(next)
	v.s.status.metrics.report(next.State)
	select {
	case v.s.wake <- struct{}{}:
	default:
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
