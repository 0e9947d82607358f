//go:build integration

package integration

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// startDriver runs the real driver on a temp socket with reg's backends, serving
// classes, and returns it with a kubelet-like client connected to it. It needs root for the
// tmpfs mounts. stateDir may be empty (records kept in memory only).
func startDriver(t *testing.T, classes driver.ClassGetter, reg *provider.Registry, stateDir string) (*driver.Driver, *csiclient.Client) {
	t.Helper()
	harness.RequireRoot(t)
	sock := filepath.Join(t.TempDir(), "csi.sock")
	d, err := driver.New(driver.Options{Endpoint: sock, NodeID: "node-1", StateDir: stateDir, Classes: classes, Providers: reg, Log: harness.LeakLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver: %v", err)
		}
	})
	c, err := csiclient.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return d, c
}
