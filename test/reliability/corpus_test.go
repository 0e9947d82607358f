package reliability

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/secretmount/secretmount/test/harness"
)

// Boundaries a bad-input case can be run through.
const (
	boundaryCSI      = "csi"
	boundaryProvider = "provider"
	// boundarySync creates a SecretSync on a real API server with the controller
	// running: the API server's admission or the controller must refuse it.
	boundarySync = "secretsync"
)

// reasonAdmission is the want.reason of a SecretSync the API server refuses (the CRD
// schema), before the controller sees it.
const reasonAdmission = "Invalid"

// badCase is one entry of a test/testdata/bad file.
type badCase struct {
	Name     string `json:"name"`
	Boundary string `json:"boundary"`
	// Class is the SecretProviderClass the pod names; nil stores none.
	Class *classSpec `json:"class,omitempty"`
	// ClassName is the secretProviderClass volume attribute; empty means "c".
	ClassName *string `json:"className,omitempty"`
	// Context overrides volume context keys; Drop removes them.
	Context map[string]string `json:"context,omitempty"`
	Drop    []string          `json:"drop,omitempty"`
	// Tokens are sent as serviceAccount.tokens, by audience.
	Tokens map[string]tokenSpec `json:"tokens,omitempty"`
	// Request changes the CSI request itself.
	Request requestSpec `json:"request,omitempty"`
	// Mount changes the provider Mount request (boundary provider).
	Mount mountSpec `json:"mount,omitempty"`
	// Answer is what the test external provider returns (class provider "evil").
	Answer *answerSpec `json:"answer,omitempty"`
	// Sync is the spec of the SecretSync (boundary secretsync), as JSON.
	Sync map[string]any `json:"sync,omitempty"`
	Want wantSpec       `json:"want"`
}

type classSpec struct {
	Provider   string            `json:"provider"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Repeat builds large parameters (oversized objects lists) from a pattern.
	Repeat map[string]repeatSpec `json:"repeat,omitempty"`
}

// repeatSpec makes a large parameter: Prefix, then Item Count times, then Suffix.
type repeatSpec struct {
	Prefix string `json:"prefix"`
	Item   string `json:"item"`
	Count  int    `json:"count"`
	Suffix string `json:"suffix"`
}

type tokenSpec struct {
	Token string `json:"token"`
	// Expires is an RFC 3339 time, or "past"/"future" relative to the run.
	Expires string `json:"expires,omitempty"`
}

type requestSpec struct {
	VolumeID   *string `json:"volumeID,omitempty"`
	TargetPath *string `json:"targetPath,omitempty"`
	// TargetSuffix is appended to the test's target folder (names with tricks).
	TargetSuffix string `json:"targetSuffix,omitempty"`
	NoCapability bool   `json:"noCapability,omitempty"`
	Block        bool   `json:"block,omitempty"`
	ReadWrite    bool   `json:"readWrite,omitempty"`
	MountGroup   string `json:"mountGroup,omitempty"`
	RawTokens    string `json:"rawTokens,omitempty"`
}

type mountSpec struct {
	// Attributes replaces the encoded attributes JSON when set.
	Attributes *string `json:"attributes,omitempty"`
	Secrets    *string `json:"secrets,omitempty"`
	Permission *string `json:"permission,omitempty"`
}

type answerSpec struct {
	Files []answerFile `json:"files"`
	// NoVersions leaves object_version out, as a broken provider would.
	NoVersions bool   `json:"noVersions,omitempty"`
	ErrorCode  string `json:"errorCode,omitempty"`
	// Version is the object version answered; empty means "1".
	Version string `json:"version,omitempty"`
}

type answerFile struct {
	Path string `json:"path"`
	// Contents is plain text; Base64 wins when set.
	Contents string `json:"contents,omitempty"`
	Base64   string `json:"base64,omitempty"`
	Mode     int32  `json:"mode,omitempty"`
	// Size, when set, repeats Contents up to this many bytes (oversized answers).
	Size int `json:"size,omitempty"`
}

type wantSpec struct {
	// Code is the gRPC code name (InvalidArgument, NotFound, ...) for the gRPC
	// boundaries.
	Code string `json:"code,omitempty"`
	// Reason is the SecretSync condition reason, or "Invalid" for admission.
	Reason string `json:"reason,omitempty"`
	// Field must appear in the message.
	Field string `json:"field"`
}

func (f answerFile) bytes() ([]byte, error) {
	if f.Base64 != "" {
		return base64.StdEncoding.DecodeString(f.Base64)
	}
	if f.Size > 0 && f.Contents != "" {
		return []byte(strings.Repeat(f.Contents, f.Size/len(f.Contents)+1)[:f.Size]), nil
	}
	return []byte(f.Contents), nil
}

func (c classSpec) parameters() map[string]string {
	out := make(map[string]string, len(c.Parameters)+len(c.Repeat))
	for k, v := range c.Parameters {
		out[k] = v
	}
	for k, r := range c.Repeat {
		out[k] = r.Prefix + strings.Repeat(r.Item, r.Count) + r.Suffix
	}
	return out
}

// loadCorpus reads every case of test/testdata/bad, sorted by file then position.
func loadCorpus(t *testing.T) []badCase {
	t.Helper()
	dir := filepath.Join(harness.RepoRoot(t), "test", "testdata", "bad")
	var files []string
	for _, pattern := range []string{"*.yaml", "*.json"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no case files in %s", dir)
	}
	sort.Strings(files)
	var out []badCase
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []badCase
		if err := yaml.UnmarshalStrict(data, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, c := range cases {
			if err := c.check(); err != nil {
				t.Fatalf("%s: case %d (%q): %v", filepath.Base(f), i, c.Name, err)
			}
			if other, dup := seen[c.Name]; dup {
				t.Fatalf("%s: case name %q is also used in %s", filepath.Base(f), c.Name, other)
			}
			seen[c.Name] = filepath.Base(f)
			out = append(out, c)
		}
	}
	return out
}

func (c badCase) check() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("no name")
	case c.Boundary != boundaryCSI && c.Boundary != boundaryProvider && c.Boundary != boundarySync:
		return fmt.Errorf("boundary %q is none of %q, %q, %q", c.Boundary, boundaryCSI, boundaryProvider, boundarySync)
	case c.Boundary == boundarySync && (c.Want.Reason == "" || c.Want.Code != "" || c.Sync == nil):
		return fmt.Errorf("a secretsync case needs sync and want.reason, not want.code")
	case c.Boundary != boundarySync && (c.Want.Code == "" || c.Want.Code == "OK" || c.Want.Reason != ""):
		return fmt.Errorf("want.code must name a failure")
	case c.Want.Field == "":
		return fmt.Errorf("want.field is required")
	case c.Boundary == boundaryProvider && c.Answer != nil:
		return fmt.Errorf("answer is for external providers behind the CSI boundary")
	}
	if _, ok := codeByName[c.Want.Code]; !ok && c.Boundary != boundarySync {
		return fmt.Errorf("want.code %q is not a gRPC code name", c.Want.Code)
	}
	for _, f := range c.answerFiles() {
		if _, err := f.bytes(); err != nil {
			return fmt.Errorf("answer file %q: %v", f.Path, err)
		}
	}
	return nil
}

func (c badCase) answerFiles() []answerFile {
	if c.Answer == nil {
		return nil
	}
	return c.Answer.Files
}

// TestCorpusIsWellFormed keeps the corpus loadable and large enough without needing
// root: every case names a boundary, a failure code and a field.
func TestCorpusIsWellFormed(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 150 {
		t.Fatalf("%d bad-input cases, want at least 150", len(cases))
	}
	per := map[string]int{}
	for _, c := range cases {
		per[c.Boundary]++
	}
	for _, b := range []string{boundaryCSI, boundaryProvider, boundarySync} {
		if per[b] == 0 {
			t.Errorf("no case for boundary %s", b)
		}
	}
	t.Logf("%d cases: %v", len(cases), per)
}
