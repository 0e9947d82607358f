package registration

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// kubelet is the kubelet side of the registration socket: a real gRPC client over the
// unix socket, as kubelet's plugin manager dials it.
type kubelet struct {
	t      *testing.T
	client registerapi.RegistrationClient
}

func dialKubelet(t *testing.T, socket string) *kubelet {
	t.Helper()
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &kubelet{t: t, client: registerapi.NewRegistrationClient(conn)}
}

// callCtx bounds one call; WaitForReady lets a call made before the server listens
// wait for it instead of failing.
func (k *kubelet) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

func (k *kubelet) getInfo() *registerapi.PluginInfo {
	k.t.Helper()
	ctx, cancel := k.callCtx()
	defer cancel()
	info, err := k.client.GetInfo(ctx, &registerapi.InfoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		k.t.Fatalf("GetInfo: %v", err)
	}
	return info
}

func (k *kubelet) notify(registered bool, msg string) {
	k.t.Helper()
	ctx, cancel := k.callCtx()
	defer cancel()
	st := &registerapi.RegistrationStatus{PluginRegistered: registered, Error: msg}
	if _, err := k.client.NotifyRegistrationStatus(ctx, st, grpc.WaitForReady(true)); err != nil {
		k.t.Fatalf("NotifyRegistrationStatus(%v, %q): %v", registered, msg, err)
	}
}
