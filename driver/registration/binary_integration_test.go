//go:build integration

package registration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/secretmount/secretmount/test/harness"
)

// TestDriverBinaryRegisters runs the real `secretmount driver --registration-dir` and
// plays kubelet's plugin manager against it: the registration socket appears once the
// CSI socket serves, GetInfo announces the CSI socket as kubelet sees it, /readyz turns
// ready and the gauge turns 1 only after kubelet's report, and SIGTERM removes the
// socket so kubelet deregisters the driver.
func TestDriverBinaryRegisters(t *testing.T) {
	api := harness.SharedAPIServer(t)
	api.ApplyCRDs(t, filepath.Join(harness.RepoRoot(t), "charts", "secretmount", "crds"))
	bin := harness.SecretmountBinary(t)

	// A short folder: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "reg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	regDir := filepath.Join(dir, "plugins_registry")
	if err := os.Mkdir(regDir, 0o750); err != nil {
		t.Fatal(err)
	}
	csiSock := filepath.Join(dir, "csi.sock")
	regSock := filepath.Join(regDir, driverName+"-reg.sock")
	const kubeletSees = "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"
	metricsAddr := freeAddr(t)

	p := harness.StartProgram(t, harness.ProgramSpec{
		Name: "secretmount-driver", Path: bin,
		Args: []string{"driver", "--endpoint=unix://" + csiSock, "--node-id=node-1", "--kubeconfig=" + api.Kubeconfig,
			"--enable-secret-sync=false", "--metrics-addr=" + metricsAddr, "--provider-volume=" + dir,
			"--registration-dir=" + regDir, "--kubelet-endpoint=" + kubeletSees},
		Ready: harness.FileExists(regSock), ReadyTimeout: time.Minute,
	})
	if _, err := os.Stat(csiSock); err != nil {
		t.Errorf("registration socket served before the CSI socket: %v", err)
	}

	k := dialKubelet(t, regSock)
	info := k.getInfo()
	if info.Type != registerapi.CSIPlugin || info.Name != driverName || info.Endpoint != kubeletSees ||
		!slices.Equal(info.SupportedVersions, []string{"1.0.0"}) {
		t.Errorf("GetInfo = {Type %q Name %q Endpoint %q SupportedVersions %q}, want {%q %q %q [1.0.0]}",
			info.Type, info.Name, info.Endpoint, info.SupportedVersions, registerapi.CSIPlugin, driverName, kubeletSees)
	}
	if code, body := get(t, "http://"+metricsAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "has not registered") {
		t.Errorf("/readyz before kubelet's report = %d %q, want 503 not registered yet", code, body)
	}

	k.notify(true, "")
	if code, body := get(t, "http://"+metricsAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after kubelet's report = %d %q, want 200", code, body)
	}
	gauge := fmt.Sprintf("secretmount_kubelet_registered{driver=%q} 1", driverName)
	if _, body := get(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(body, gauge) {
		t.Errorf("/metrics has no %q", gauge)
	}

	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM driver: %v", err)
	}
	waitFor(t, "the driver to exit", func() bool { return errors.Is(syscall.Kill(p.PID, 0), syscall.ESRCH) })
	if _, err := os.Stat(regSock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registration socket after SIGTERM: stat error %v, want it removed", err)
	}
	logText, err := os.ReadFile(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "kubelet registered the CSI driver") {
		t.Errorf("driver log does not say kubelet registered it:\n%s", logText)
	}
}

// freeAddr is a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}
