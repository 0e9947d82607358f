package main

import (
	"errors"
	"testing"

	"github.com/secretmount/secretmount/test/harness"
)

// TestScanReadsWhatTheHarnessRecords: the folder layout the harness writes is the one
// the scan reads. A value recorded with RecordSecretValue and then logged through
// LeakLogger (JSON, escaped) and returned in an error is found in both places; a value
// never logged is not.
func TestScanReadsWhatTheHarnessRecords(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(harness.LeakDirEnv, dir)
	const leaked, kept = "leaked \"pa$$\"\n-w0rd", "kept-secret-1234"
	t.Run("suite", func(t *testing.T) {
		harness.RecordSecretValue(t, leaked, kept)
		harness.LeakLogger(t).V(4).Info("fetched", "object", "db", "content", leaked)
		harness.RecordError(t, errors.New("rpc error: code = Internal desc = bad "+leaked))
	})
	r, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Values != 2 || r.Files != 2 {
		t.Errorf("%d values in %d files, want 2 in 2", r.Values, r.Files)
	}
	forms := map[string]bool{}
	for _, h := range r.Hits {
		forms[h.Form] = true
	}
	if len(r.Hits) != 2 || !forms["json"] || !forms["raw"] {
		t.Errorf("hits %+v, want the JSON log line and the raw error", r.Hits)
	}
}
