//go:build integration

package reliability

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretmount/secretmount/driver"
	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/test/csiclient"
	"github.com/secretmount/secretmount/test/harness"
)

// faultDriver is the real driver, in this process so its goroutines and open files can
// be counted, serving CSI on a unix socket with the backends of reg.
type faultDriver struct {
	d       *driver.Driver
	csi     *csiclient.Client
	metrics *prometheus.Registry
	// root holds the pods' folders, as /var/lib/kubelet/pods would.
	root string
}

func startFaultDriver(t *testing.T, classes driver.ClassGetter, reg *provider.Registry, tune func(*driver.Options)) *faultDriver {
	t.Helper()
	harness.RequireRoot(t)
	sockets, err := os.MkdirTemp("", "flt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockets) })
	fd := &faultDriver{metrics: prometheus.NewRegistry(), root: t.TempDir()}
	// Runs before t.TempDir's removal: whatever a failed run left mounted goes, so
	// nothing outlives the test.
	t.Cleanup(func() {
		for mp := range tmpfsMountsUnder(t, fd.root) {
			_ = unmountDetach(mp)
		}
	})
	opts := driver.Options{
		Endpoint: filepath.Join(sockets, "csi.sock"), NodeID: "node-1", Classes: classes, Providers: reg,
		Metrics: fd.metrics, Log: harness.LeakLogger(t),
	}
	t.Cleanup(func() { recordMetrics(t, fd.metrics) })
	if tune != nil {
		tune(&opts)
	}
	fd.d, err = driver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, context.Background(), fd.d.Run)
	fd.csi, err = csiclient.Dial(opts.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fd.csi.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fd.csi.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return fd
}

func unmountDetach(path string) error { return syscall.Unmount(path, syscall.MNT_DETACH) }

// volume is pod i's volume of class in namespace ns, with ServiceAccount sa; its
// parent folder exists, as kubelet makes it, and the target does not.
func (fd *faultDriver) volume(t *testing.T, i int, ns, sa, class string, tokens map[string]csiclient.Token) csiclient.Volume {
	t.Helper()
	uid := fmt.Sprintf("fa017000-0000-4000-8000-%012d", i)
	target := filepath.Join(fd.root, "pods", uid, "volumes", "kubernetes.io~csi", "secrets", "mount")
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		t.Fatal(err)
	}
	return csiclient.Volume{
		TargetPath: target,
		Pod:        csiclient.Pod{Namespace: ns, Name: fmt.Sprintf("app-%d", i), UID: uid, ServiceAccount: sa},
		Class:      class,
		Tokens:     tokens,
	}
}

// unsignedToken is a JWT-shaped ServiceAccount token for audience aud; moto's STS does
// not verify tokens, the backend only reads their subject.
func unsignedToken(ns, sa, aud string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": "system:serviceaccount:" + ns + ":" + sa, "aud": []string{aud}})
	return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("sig"))
}
