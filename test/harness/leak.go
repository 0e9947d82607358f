package harness

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// LeakDirEnv names the folder the suite records into for the leak scan (test/leakscan):
// the secret values tests seed under values/, and under logs/, events/, metrics/ and
// errors/ everything secretmount said while they ran. `make test` sets it to a fresh
// folder; unset, nothing is recorded.
const LeakDirEnv = "SECRETMOUNT_LEAK_DIR"

// Kinds of text recorded for the scan, one subfolder each.
const (
	LeakLogs    = "logs"
	LeakEvents  = "events"
	LeakMetrics = "metrics"
	LeakErrors  = "errors"
)

// leakValues is the subfolder of values; test/leakscan reads the same name.
const leakValues = "values"

// minLeakValue is the shortest value worth recording: a shorter one cannot be told apart
// from ordinary words in a log. test/leakscan uses the same bound.
const minLeakValue = 8

var leakSeq atomic.Int64

// LeakRecording reports whether the suite records for the leak scan.
func LeakRecording() bool { return os.Getenv(LeakDirEnv) != "" }

// leakWrite writes data to a new file under kind, named after label (a test or a
// component), this process and a sequence number, so parallel tests and packages never
// write to the same file.
func leakWrite(kind, label, ext string, data []byte) error {
	path, err := leakCreatePath(kind, label, ext)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("recording for the leak scan: %w", err)
	}
	return nil
}

func leakCreatePath(kind, label, ext string) (string, error) {
	dir := filepath.Join(os.Getenv(LeakDirEnv), kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("recording for the leak scan: %w", err)
	}
	name := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(label), "-"), "-")
	if len(name) > 100 {
		name = name[:100]
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%d-%d%s", name, os.Getpid(), leakSeq.Add(1), ext)), nil
}

func writeLeakFile(t testing.TB, kind, ext string, data []byte) {
	if !LeakRecording() {
		return
	}
	if err := leakWrite(kind, t.Name(), ext, data); err != nil {
		t.Errorf("%v", err)
	}
}

// RecordLeak records text under kind for the leak scan, labelled with label (what
// produced it), for code that has no test at hand (a client's interceptor). It does
// nothing when the scan is off.
func RecordLeak(kind, label, text string) error {
	if !LeakRecording() {
		return nil
	}
	return leakWrite(kind, label, ".txt", []byte(text))
}

// recordValue registers a credential a component was started with (a root or admin
// token) for the leak scan, labelled with what it is.
func recordValue(label, v string) error {
	if !LeakRecording() || len(v) < minLeakValue {
		return nil
	}
	return leakWrite(leakValues, label, "", []byte(v))
}

// RecordSecretValue registers values a test seeds into a backend or a Secret, so the
// leak scan looks for them everywhere. Values shorter than 8 bytes are not recorded.
func RecordSecretValue(t testing.TB, values ...string) {
	for _, v := range values {
		if len(v) >= minLeakValue {
			writeLeakFile(t, leakValues, "", []byte(v))
		}
	}
}

// RecordLeakText records text secretmount produced (a command's output, a status
// message) under kind for the leak scan.
func RecordLeakText(t testing.TB, kind, text string) {
	writeLeakFile(t, kind, ".txt", []byte(text))
}

// RecordError records the message of an error a test got from secretmount (a gRPC
// status, a condition) for the leak scan; nil records nothing.
func RecordError(t testing.TB, err error) {
	if err != nil {
		RecordLeakText(t, LeakErrors, err.Error()+"\n")
	}
}

// RecordLeakFile copies the file at path (a program's log) under kind for the leak scan.
func RecordLeakFile(t testing.TB, kind, path string) {
	if !LeakRecording() {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("recording %s for the leak scan: %v", path, err)
		return
	}
	writeLeakFile(t, kind, ".log", data)
}

// ScrapeMetrics records one scrape of a Prometheus endpoint (http://host:port/metrics)
// for the leak scan.
func ScrapeMetrics(t testing.TB, url string) {
	if !LeakRecording() {
		return
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Errorf("scraping %s for the leak scan: %v", url, err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("scraping %s for the leak scan: %v", url, err)
		return
	}
	writeLeakFile(t, LeakMetrics, ".txt", body)
}

// LeakLogger returns a JSON logger at full verbosity for an in-process driver or
// controller. With the leak scan on, its lines go to a file under logs/ (closed when t
// ends; later lines are dropped); off, they are formatted and dropped, so the same
// code runs either way.
func LeakLogger(t testing.TB) logr.Logger {
	sink := &leakSink{}
	if LeakRecording() {
		path, err := leakCreatePath(LeakLogs, t.Name(), ".log")
		if err == nil {
			sink.f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		}
		if err != nil {
			t.Errorf("recording logs for the leak scan: %v", err)
		}
		t.Cleanup(sink.close)
	}
	return funcr.NewJSON(sink.write, funcr.Options{Verbosity: 10, LogTimestamp: true})
}

type leakSink struct {
	mu sync.Mutex
	f  *os.File
}

func (s *leakSink) write(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		_, _ = s.f.WriteString(line + "\n")
	}
}

func (s *leakSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}
