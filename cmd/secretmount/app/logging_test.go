package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

func TestLoggerFormatsAndVerbosity(t *testing.T) {
	tests := []struct {
		name      string
		opts      logOptions
		wantJSON  bool
		wantLines int // V(0) always, V(2) only at -v 2 and up
	}{
		{"text default", logOptions{format: "text"}, false, 1},
		{"json", logOptions{format: "json"}, true, 1},
		{"json verbose", logOptions{format: "json", verbosity: 2}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := tt.opts.logger(&buf)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(klog.ClearLogger)
			log.Info("published", "volume", "v1")
			log.V(2).Info("call", "method", "NodePublishVolume")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != tt.wantLines {
				t.Fatalf("got %d lines, want %d: %q", len(lines), tt.wantLines, buf.String())
			}
			var m map[string]any
			isJSON := json.Unmarshal([]byte(lines[0]), &m) == nil
			if isJSON != tt.wantJSON {
				t.Errorf("line %q: JSON = %v, want %v", lines[0], isJSON, tt.wantJSON)
			}
			if !strings.Contains(lines[0], "volume") || !strings.Contains(lines[0], "v1") {
				t.Errorf("line %q lacks the key-value pair", lines[0])
			}
		})
	}
}

func TestLoggerRoutesKlog(t *testing.T) {
	var buf bytes.Buffer
	o := logOptions{format: "json"}
	if _, err := o.logger(&buf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(klog.ClearLogger)
	klog.InfoS("from client-go", "key", "value")
	klog.Flush()
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &m); err != nil || m["msg"] != "from client-go" {
		t.Errorf("klog line = %q (%v), want JSON with msg", buf.String(), err)
	}
}

func TestLoggerRejectsBadFlags(t *testing.T) {
	for _, o := range []logOptions{{format: "xml"}, {format: "text", verbosity: -1}} {
		if _, err := o.logger(&bytes.Buffer{}); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestDriverCommandFlags(t *testing.T) {
	cmd := newDriverCommand()
	for _, name := range []string{"endpoint", "driver-name", "node-id", "kubeconfig", "provider-timeout", "state-dir",
		"enable-secret-rotation", "rotation-poll-interval", "metrics-addr", "log-format", "v", "provider-volume", "disable-builtin-provider"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("flag --%s missing", name)
		}
	}
	if got := cmd.Flags().Lookup("driver-name").DefValue; got != "secrets-store.csi.k8s.io" {
		t.Errorf("default driver name %q", got)
	}
	if got := cmd.Flags().Lookup("rotation-poll-interval").DefValue; got != "2m0s" {
		t.Errorf("default rotation poll interval %q", got)
	}
	cmd.SetArgs([]string{"--log-format", "json"})
	cmd.SetErr(&bytes.Buffer{})
	t.Cleanup(klog.ClearLogger)
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Errorf("run without --node-id: %v", err)
	}
}
