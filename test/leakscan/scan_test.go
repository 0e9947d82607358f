package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// plant writes files (relative path → content) and values (record name → value) into a
// fresh leak folder.
func plant(t *testing.T, values, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range values {
		write(t, filepath.Join(dir, valuesDir, name), v)
	}
	for name, text := range files {
		write(t, filepath.Join(dir, name), text)
	}
	return dir
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func jsonLine(t *testing.T, kv map[string]any) string {
	t.Helper()
	b, err := json.Marshal(kv)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestScanFindsPlantedValues(t *testing.T) {
	const pw = "pa$$ w0rd\n\"<q>"
	const ctl = "ctl\x01-w0rd-9"
	doc := `{"username":"postgres","password":"s3cr3t/key+9"}`
	quiet := "level=info msg=\"published\" volume=csi-1 files=6\n"
	tests := []struct {
		name     string
		value    string
		log      string
		wantLine int
		wantForm string
	}{
		{"raw in a text log", pw, quiet + "level=debug msg=got value=" + pw + "\n", 2, "raw"},
		{"escaped in a JSON log", pw, quiet + jsonLineNoHTML(t, map[string]any{"msg": "got", "v": pw}), 2, "json"},
		{"html-escaped in a JSON log", pw, jsonLine(t, map[string]any{"err": "bad " + pw}), 1, "json html-escaped"},
		{"Go-quoted in an error", ctl, quiet + quiet + "rpc error: code = Internal desc = bad value " + strconv.Quote(ctl) + "\n", 3, "quoted"},
		{"base64 in an event", pw, "Warning Failed data=" + base64.StdEncoding.EncodeToString([]byte(pw)) + "\n", 1, "base64"},
		{"hex in a metric label", pw, `secretmount_x{v="` + hex.EncodeToString([]byte(pw)) + `"} 1` + "\n", 1, "hex"},
		{"a field of a JSON secret", doc, quiet + "password is s3cr3t/key+9 here\n", 2, "json leaf, raw"},
		{"no trailing newline", pw, quiet + pw, 2, "raw"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := plant(t, map[string]string{"v1": tc.value}, map[string]string{"logs/driver.log": tc.log})
			r, err := Scan(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Hits) != 1 {
				t.Fatalf("%d hits, want 1: %+v", len(r.Hits), r.Hits)
			}
			h := r.Hits[0]
			if h.File != filepath.Join("logs", "driver.log") || h.Line != tc.wantLine || h.Value != "v1" || h.Form != tc.wantForm {
				t.Errorf("hit %+v, want logs/driver.log:%d value v1 form %s", h, tc.wantLine, tc.wantForm)
			}
			var out bytes.Buffer
			if code := run([]string{dir}, &out); code != 1 {
				t.Errorf("exit code %d, want 1:\n%s", code, out.String())
			}
			if strings.Contains(out.String(), "s3cr3t") || strings.Contains(out.String(), "w0rd") {
				t.Errorf("the report quotes the value:\n%s", out.String())
			}
		})
	}
}

func jsonLineNoHTML(t *testing.T, kv map[string]any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(kv); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestScanOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		values   map[string]string
		files    map[string]string
		wantCode int
		wantOut  string
	}{
		{"clean", map[string]string{"a": "value-one-1234", "b": "value-two-5678"},
			map[string]string{"logs/x.log": "nothing here\n", "events/e.txt": "Normal Synced\n"}, 0, "2 values recorded (0 too short to scan)"},
		{"values are not scanned as logs", map[string]string{"a": "value-one-1234"},
			map[string]string{"logs/x.log": "ok\n"}, 0, "1 files, 1 lines"},
		{"nothing recorded", nil, map[string]string{"logs/x.log": "ok\n"}, 1, "no secret value was recorded"},
		{"only short values", map[string]string{"a": "short"}, map[string]string{"logs/x.log": "short\n"}, 1, "(1 too short to scan)"},
		{"no files", map[string]string{"a": "value-one-1234"}, nil, 1, "no log, event, metric or error was recorded"},
		{"short JSON leaves are names, not secrets", map[string]string{"a": `{"username":"postgres","password":"long-secret-99"}`},
			map[string]string{"logs/x.log": "class postgres-aws-secrets user postgres\n"}, 0, "0 hits"},
		{"two hits on two lines", map[string]string{"a": "value-one-1234"},
			map[string]string{"errors/e.txt": "x value-one-1234 value-one-1234\ny\nvalue-one-1234\n"}, 1, "2 hits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := plant(t, tc.values, tc.files)
			var out bytes.Buffer
			if code := run([]string{dir}, &out); code != tc.wantCode {
				t.Errorf("exit code %d, want %d:\n%s", code, tc.wantCode, out.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}

func TestScanRefusesAMissingFolder(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{filepath.Join(t.TempDir(), "absent")}, &out); code != 1 || !strings.Contains(out.String(), "leak folder") {
		t.Errorf("exit code %d, output %q", code, out.String())
	}
	if code := run(nil, &out); code != 2 {
		t.Errorf("no argument: exit code %d, want 2", code)
	}
}
