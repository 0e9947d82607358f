package harness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
)

// leakFiles returns the contents of the files under dir/kind.
func leakFiles(t *testing.T, dir, kind string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, kind))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, kind, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestLeakRecording(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(LeakDirEnv, dir)
	t.Run("record", func(t *testing.T) {
		RecordSecretValue(t, "a-long-secret-1", "short", "a-long-secret-2")
		RecordError(t, errors.New("rpc error: code = NotFound"))
		RecordError(t, nil)
		RecordLeakText(t, LeakMetrics, "secretmount_x 1\n")
		log := LeakLogger(t)
		log.V(5).Info("published", "volume", "csi-1")
	})
	values := leakFiles(t, dir, leakValues)
	if len(values) != 2 || !strings.HasPrefix(values[0], "a-long-secret-") || !strings.HasPrefix(values[1], "a-long-secret-") {
		t.Errorf("values recorded: %q, want the two long ones", values)
	}
	if got := leakFiles(t, dir, LeakErrors); len(got) != 1 || got[0] != "rpc error: code = NotFound\n" {
		t.Errorf("errors recorded: %q", got)
	}
	if got := leakFiles(t, dir, LeakMetrics); len(got) != 1 {
		t.Errorf("metrics recorded: %q", got)
	}
	logs := leakFiles(t, dir, LeakLogs)
	if len(logs) != 1 || !strings.Contains(logs[0], `"msg":"published"`) || !strings.Contains(logs[0], `"volume":"csi-1"`) {
		t.Errorf("logs recorded: %q, want the V(5) line as JSON", logs)
	}
}

func TestScrapeMetricsRecordsTheExposition(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(LeakDirEnv, dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("secretmount_publish_total 3\n"))
	}))
	t.Cleanup(srv.Close)
	ScrapeMetrics(t, srv.URL+"/metrics")
	if got := leakFiles(t, dir, LeakMetrics); len(got) != 1 || got[0] != "secretmount_publish_total 3\n" {
		t.Errorf("metrics recorded: %q", got)
	}
}

func TestRecordGRPCErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(LeakDirEnv, dir)
	failing := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		return errors.New("rpc error: code = PermissionDenied desc = denied")
	}
	for _, method := range []string{"/csi.v1.Node/NodePublishVolume", "/csi.v1.Identity/Probe", "/v1alpha1.CSIDriverProvider/Mount"} {
		if err := RecordGRPCErrors(context.Background(), method, nil, nil, nil, failing); err == nil {
			t.Fatalf("%s: the error was swallowed", method)
		}
	}
	if err := RecordGRPCErrors(context.Background(), "/csi.v1.Node/NodePublishVolume", nil, nil, nil,
		func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := leakFiles(t, dir, LeakErrors); len(got) != 2 {
		t.Errorf("errors recorded: %q, want the publish and the mount error (not Probe's, not a success)", got)
	}
}

func TestLeakRecordingOff(t *testing.T) {
	t.Setenv(LeakDirEnv, "")
	dir := t.TempDir()
	RecordSecretValue(t, "a-long-secret-1")
	RecordError(t, errors.New("x"))
	LeakLogger(t).Info("dropped")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("something was recorded with the scan off: %v %v", entries, err)
	}
}

func TestProgramLogsRecordedForOurBinaryOnly(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(LeakDirEnv, dir)
	for _, ours := range []bool{true, false} {
		in := testInstance(t)
		in.leakLogs = ours
		p := shell(t, in, "echo line-from-program")
		<-p.exited
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
	}
	logs := leakFiles(t, dir, LeakLogs)
	if len(logs) != 1 || logs[0] != "line-from-program\n" {
		t.Errorf("logs recorded: %q, want the one program's log", logs)
	}
}
