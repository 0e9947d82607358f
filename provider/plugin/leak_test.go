package plugin

import (
	"context"
	"github.com/secretmount/secretmount/test/harness"
	"os"
	"runtime"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}

// settled returns the goroutine and fd counts once they stop falling (bounded: the
// server's per-call goroutines end just after the answers are read).
func settled(t *testing.T, goroutines, fds int) (int, int) {
	t.Helper()
	g, f := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 100 && (g > goroutines || f > fds); i++ {
		waitBriefly()
		g, f = runtime.NumGoroutine(), openFDs(t)
	}
	return g, f
}

// TestServerDoesNotLeak drives the server as the upstream driver does, over one
// connection: 1000 sequential Mount calls, then 100 concurrent ones, and checks that
// neither goroutines nor file descriptors grow. Run with -v for the figures.
func TestServerDoesNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("1100 mounts")
	}
	spc := harness.FixtureClass(t, "cnpg-aws-secretproviderclass.yaml")
	dir := socketDir(t)
	s := newTestServer(t, &fakeBackend{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	lis, err := Listen(dir + "/aws.sock")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(g, s)
	go func() { served <- g.Serve(lis) }()
	t.Cleanup(func() { cancel(); g.Stop(); <-served })

	conn, err := grpc.NewClient("unix://"+dir+"/aws.sock", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := v1alpha1.NewCSIDriverProviderClient(conn)
	req := upstreamRequest(t, spc, nil)
	mount := func() error {
		resp, err := client.Mount(ctx, req)
		if err == nil && len(resp.GetFiles()) != 6 {
			t.Errorf("mount returned %d files", len(resp.GetFiles()))
		}
		return err
	}
	if err := mount(); err != nil { // connect and warm up before the baseline
		t.Fatal(err)
	}
	g0, f0 := runtime.NumGoroutine(), openFDs(t)

	for i := range 1000 {
		if err := mount(); err != nil {
			t.Fatalf("sequential mount %d: %v", i, err)
		}
	}
	g1, f1 := settled(t, g0, f0)
	t.Logf("1000 sequential mounts: goroutines %d -> %d, open fds %d -> %d", g0, g1, f0, f1)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mount(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent mount: %v", err)
	}
	g2, f2 := settled(t, g0, f0)
	t.Logf("100 concurrent mounts: goroutines %d -> %d, open fds %d -> %d", g0, g2, f0, f2)

	if g1 > g0 || g2 > g0 {
		t.Errorf("goroutines grew: %d -> %d (sequential) -> %d (concurrent)", g0, g1, g2)
	}
	if f1 > f0 || f2 > f0 {
		t.Errorf("file descriptors grew: %d -> %d (sequential) -> %d (concurrent)", f0, f1, f2)
	}
}
