//go:build integration

package interop

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/provider/plugin"
	"github.com/secretmount/secretmount/test/harness"
)

// startOurDriver runs our driver in this process with reg as its backends, serving CSI
// on a temp socket until the test ends.
func startOurDriver(t *testing.T, api *harness.APIServer, nodeID string, reg *provider.Registry, timeout time.Duration) csi.NodeClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	classes, err := driver.NewCacheClassGetter(api.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := classes.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	endpoint := filepath.Join(t.TempDir(), "csi.sock")
	d, err := driver.New(driver.Options{
		Endpoint: "unix://" + endpoint, NodeID: nodeID, ProviderTimeout: timeout,
		Classes: classes, Providers: reg, Log: testr.New(t),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("our driver: %v", err)
		}
	})
	return csi.NewNodeClient(dialUnix(t, endpoint))
}

func dialUnix(t *testing.T, path string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// serveOurProvider runs `secretmount provider`'s server in this process as name, on
// dir/<name>.sock, with backend out of reg, until the test ends.
func serveOurProvider(t *testing.T, dir, name string, reg *provider.Registry) {
	t.Helper()
	srv, err := plugin.NewServer(plugin.ServerOptions{Name: name, Registry: reg, RuntimeVersion: "interop"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, dir) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("provider server: %v", err)
		}
	})
	waitForSocket(t, filepath.Join(dir, name+".sock"))
}

func waitForSocket(t *testing.T, path string) {
	t.Helper()
	for range 200 {
		if fileExists(path) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}
