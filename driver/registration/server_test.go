package registration

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

const driverName = "secrets-store.csi.k8s.io"

type running struct {
	srv     *Server
	metrics *prometheus.Registry
	stop    func() error
}

// start runs a Server on a fresh folder; stop cancels it and returns Run's error.
func start(t *testing.T, opts Options) *running {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.DriverName == "" {
		opts.DriverName = driverName
	}
	if opts.KubeletEndpoint == "" {
		opts.KubeletEndpoint = "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"
	}
	reg := prometheus.NewRegistry()
	opts.Metrics = reg
	if opts.Log.GetSink() == nil {
		opts.Log = testr.New(t)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			cancel()
			runErr = <-done
			stopped = true
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{srv: srv, metrics: reg, stop: stop}
}

// waitFor polls cond until it holds; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGetInfo(t *testing.T) {
	tests := []struct {
		name, endpoint, driver, wantEndpoint string
	}{
		{"plain path", "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock", driverName, "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"},
		{"unix URL is given to kubelet as a path", "unix:///var/lib/k0s/kubelet/plugins/x/csi.sock", "other.example.com", "/var/lib/k0s/kubelet/plugins/x/csi.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, Options{DriverName: tt.driver, KubeletEndpoint: tt.endpoint})
			if want := filepath.Join(filepath.Dir(r.srv.SocketPath()), tt.driver+"-reg.sock"); r.srv.SocketPath() != want {
				t.Errorf("socket = %s, want %s", r.srv.SocketPath(), want)
			}
			info := dialKubelet(t, r.srv.SocketPath()).getInfo()
			if info.Type != registerapi.CSIPlugin || info.Name != tt.driver || info.Endpoint != tt.wantEndpoint ||
				!slices.Equal(info.SupportedVersions, []string{"1.0.0"}) {
				t.Errorf("GetInfo = {Type %q Name %q Endpoint %q SupportedVersions %q}, want {%q %q %q [1.0.0]}",
					info.Type, info.Name, info.Endpoint, info.SupportedVersions, registerapi.CSIPlugin, tt.driver, tt.wantEndpoint)
			}
			if err := r.srv.Ready(); err == nil || !strings.Contains(err.Error(), "not registered") {
				t.Errorf("Ready before kubelet's report = %v, want not registered yet", err)
			}
		})
	}
}

func TestNotifyRegistrationStatus(t *testing.T) {
	const refusal = "RegisterPlugin error -- plugin validation failed with err: highest supported version reported by driver is v0.3.0"
	tests := []struct {
		name       string
		registered bool
		msg        string
		wantState  State
		wantReady  string // "" means Ready is nil
		wantGauge  float64
	}{
		{"registered", true, "", Registered, "", 1},
		{"refused", false, refusal, Failed, "kubelet refused to register CSI driver " + driverName + ": " + refusal, 0},
		{"refused without a reason", false, "", Failed, "no reason given", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A long back-off keeps the failed state in place while it is checked.
			r := start(t, Options{RetryDelay: time.Hour})
			k := dialKubelet(t, r.srv.SocketPath())
			k.getInfo()
			k.notify(tt.registered, tt.msg)

			if st := r.srv.Status(); st.State != tt.wantState || (tt.wantState == Failed && !strings.Contains(tt.wantReady, st.Error)) {
				t.Errorf("Status = %+v, want state %s", st, tt.wantState)
			}
			err := r.srv.Ready()
			if tt.wantReady == "" && err != nil {
				t.Errorf("Ready = %v, want nil", err)
			}
			if tt.wantReady != "" && (err == nil || !strings.Contains(err.Error(), tt.wantReady)) {
				t.Errorf("Ready = %v, want it to contain %q", err, tt.wantReady)
			}
			if got := testutil.ToFloat64(r.srv.status.metrics.registered); got != tt.wantGauge {
				t.Errorf("secretmount_kubelet_registered = %v, want %v", got, tt.wantGauge)
			}
			if got := testutil.ToFloat64(r.srv.status.metrics.reports.WithLabelValues(tt.wantState.String())); got != 1 {
				t.Errorf("reports{result=%s} = %v, want 1", tt.wantState, got)
			}
			// The failure leaves the socket served: kubelet may retry on it.
			k.getInfo()
			if err := r.stop(); err != nil {
				t.Errorf("Run = %v, want nil after a clean stop", err)
			}
		})
	}
}

func TestMetricsExposition(t *testing.T) {
	r := start(t, Options{})
	dialKubelet(t, r.srv.SocketPath()).notify(true, "")
	want := `
# HELP secretmount_kubelet_registered 1 while kubelet reports the CSI driver registered through the built-in registration socket, else 0.
# TYPE secretmount_kubelet_registered gauge
secretmount_kubelet_registered{driver="secrets-store.csi.k8s.io"} 1
`
	if err := testutil.GatherAndCompare(r.metrics, strings.NewReader(want), "secretmount_kubelet_registered"); err != nil {
		t.Error(err)
	}
}

// After a refusal the socket is re-created, which is what makes kubelet try again; a
// new attempt can then succeed.
func TestFailureRecreatesSocket(t *testing.T) {
	r := start(t, Options{RetryDelay: 20 * time.Millisecond})
	k := dialKubelet(t, r.srv.SocketPath())
	k.getInfo()
	k.notify(false, "RegisterPlugin error -- plugin registration failed with err: error updating CSINode")
	waitFor(t, "the socket to be re-created", func() bool {
		// Pending comes back only with a new socket; the old one is gone before that.
		_, err := os.Stat(r.srv.SocketPath())
		return err == nil && r.srv.Status().State == Pending
	})
	// A fresh dial, as kubelet does on the new socket's create event.
	k2 := dialKubelet(t, r.srv.SocketPath())
	if info := k2.getInfo(); info.Name != driverName {
		t.Fatalf("GetInfo on the re-created socket: name %q", info.Name)
	}
	k2.notify(true, "")
	if err := r.srv.Ready(); err != nil {
		t.Errorf("Ready after the second attempt = %v, want nil", err)
	}
	if got := testutil.ToFloat64(r.srv.status.metrics.registered); got != 1 {
		t.Errorf("secretmount_kubelet_registered = %v, want 1", got)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, driverName+"-reg.sock")
	// A socket file nobody listens on, as a killed process leaves it.
	lis, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	start(t, Options{Dir: dir})
	if info := dialKubelet(t, stale).getInfo(); info.Name != driverName {
		t.Errorf("GetInfo name = %q, want %q", info.Name, driverName)
	}
}

func TestSocketRemovedOnStop(t *testing.T) {
	r := start(t, Options{})
	k := dialKubelet(t, r.srv.SocketPath())
	k.getInfo()
	k.notify(true, "")
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if _, err := os.Stat(r.srv.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after stop: stat error %v, want it gone", err)
	}
	if got := testutil.ToFloat64(r.srv.status.metrics.registered); got != 0 {
		t.Errorf("secretmount_kubelet_registered after stop = %v, want 0", got)
	}
}

func TestRunFailsOnMissingDir(t *testing.T) {
	srv, err := New(Options{Dir: filepath.Join(t.TempDir(), "missing"), DriverName: driverName, KubeletEndpoint: "/csi.sock"})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen for kubelet registration on "+srv.SocketPath()) {
		t.Errorf("Run = %v, want a listen error naming %s", err, srv.SocketPath())
	}
}

func TestOptionsRefused(t *testing.T) {
	long := "/" + strings.Repeat("d", 100)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{DriverName: driverName, KubeletEndpoint: "/csi.sock"}, "registration dir is required"},
		{"no driver name", Options{Dir: "/r", KubeletEndpoint: "/csi.sock"}, "driver name is required"},
		{"driver name with a slash", Options{Dir: "/r", DriverName: "a/b", KubeletEndpoint: "/csi.sock"}, `driver name "a/b"`},
		{"hidden socket name", Options{Dir: "/r", DriverName: ".x", KubeletEndpoint: "/csi.sock"}, `driver name ".x"`},
		{"no endpoint", Options{Dir: "/r", DriverName: driverName}, "kubelet endpoint is required"},
		{"relative endpoint", Options{Dir: "/r", DriverName: driverName, KubeletEndpoint: "csi/csi.sock"}, `kubelet endpoint "csi/csi.sock" must be an absolute path`},
		{"tcp endpoint", Options{Dir: "/r", DriverName: driverName, KubeletEndpoint: "tcp://127.0.0.1:1"}, "only unix sockets"},
		{"path too long", Options{Dir: long, DriverName: driverName, KubeletEndpoint: "/csi.sock"}, "longer than the 107 a unix socket allows"},
		{"max below first delay", Options{Dir: "/r", DriverName: driverName, KubeletEndpoint: "/csi.sock", RetryDelay: time.Minute, MaxRetryDelay: time.Second}, "retry delay 1m0s"},
		{"negative check interval", Options{Dir: "/r", DriverName: driverName, KubeletEndpoint: "/csi.sock", CheckInterval: -time.Second}, "check interval -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// The registration socket appears only once the CSI socket answers: kubelet calls
// NodeGetInfo on it as part of registering.
func TestWaitsForCSISocket(t *testing.T) {
	csiSock := filepath.Join(t.TempDir(), "csi.sock")
	r := start(t, Options{CSIEndpoint: "unix://" + csiSock})
	if _, err := os.Stat(r.srv.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("registration socket before the CSI socket listens: stat error %v, want it absent", err)
	}
	lis, err := net.Listen("unix", csiSock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	if info := dialKubelet(t, r.srv.SocketPath()).getInfo(); info.Name != driverName {
		t.Errorf("GetInfo name = %q, want %q", info.Name, driverName)
	}
}

func TestStopWhileWaitingForCSISocket(t *testing.T) {
	r := start(t, Options{CSIEndpoint: filepath.Join(t.TempDir(), "csi.sock")})
	if err := r.stop(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if _, err := os.Stat(r.srv.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registration socket after stop: stat error %v, want it absent", err)
	}
}

// kubelet deregisters a driver whose socket is deleted; the server puts it back.
func TestDeletedSocketRecreated(t *testing.T) {
	r := start(t, Options{CheckInterval: 10 * time.Millisecond})
	k := dialKubelet(t, r.srv.SocketPath())
	k.getInfo()
	k.notify(true, "")
	if err := os.Remove(r.srv.SocketPath()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted socket to be re-created", func() bool {
		_, err := os.Stat(r.srv.SocketPath())
		return err == nil && r.srv.Status().State == Pending
	})
	if info := dialKubelet(t, r.srv.SocketPath()).getInfo(); info.Name != driverName {
		t.Errorf("GetInfo on the re-created socket: name %q", info.Name)
	}
}

// A socket another process has put at the path is not removed on stop.
func TestForeignSocketKeptOnStop(t *testing.T) {
	r := start(t, Options{})
	dialKubelet(t, r.srv.SocketPath()).getInfo()
	if err := os.Remove(r.srv.SocketPath()); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("unix", r.srv.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if _, err := os.Stat(r.srv.SocketPath()); err != nil {
		t.Errorf("the other process's socket was removed on stop: %v", err)
	}
}

// Each re-creation after a refusal waits twice as long as the last, up to the
// maximum; kubelet's success starts the back-off over.
func TestRetryBackoff(t *testing.T) {
	var mu gosync.Mutex
	var waits []string
	log := funcr.New(func(_, args string) {
		if strings.Contains(args, `"msg"="re-creating the kubelet registration socket`) {
			mu.Lock()
			defer mu.Unlock()
			_, after, _ := strings.Cut(args, `"after"=`)
			waits = append(waits, strings.Trim(after, `"`))
		}
	}, funcr.Options{})
	r := start(t, Options{Log: log, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 40 * time.Millisecond})
	recreations := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(waits)
	}
	refuse := func() {
		t.Helper()
		n := recreations()
		k := dialKubelet(t, r.srv.SocketPath())
		k.getInfo()
		k.notify(false, "RegisterPlugin error -- plugin registration failed")
		waitFor(t, "the socket to be re-created", func() bool {
			_, err := os.Stat(r.srv.SocketPath())
			return recreations() == n+1 && err == nil && r.srv.Status().State == Pending
		})
	}
	for range 4 {
		refuse()
	}
	dialKubelet(t, r.srv.SocketPath()).notify(true, "")
	refuse()
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"10ms", "20ms", "40ms", "40ms", "10ms"}; !slices.Equal(waits, want) {
		t.Errorf("back-off before each re-creation = %v, want %v", waits, want)
	}
}
