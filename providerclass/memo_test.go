package providerclass

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestMemoKeepsWithinBounds proves the memo computes a key once while it is kept, and
// never holds more entries or key bytes than its bounds, nor a key too big to keep.
func TestMemoKeepsWithinBounds(t *testing.T) {
	m := &memo[int]{maxEntries: 4, maxBytes: 160}
	calls := 0
	get := func(key string) int {
		return m.get(key, func() int { calls++; return len(key) })
	}
	if get("a") != 1 || get("a") != 1 || calls != 1 {
		t.Fatalf("a computed %d times, want once", calls)
	}
	for i := range 20 {
		get(fmt.Sprintf("key-%d", i))
		if len(m.entries) > m.maxEntries || m.bytes > m.maxBytes {
			t.Fatalf("%d entries of %d bytes, bounds %d and %d", len(m.entries), m.bytes, m.maxEntries, m.maxBytes)
		}
	}
	big := strings.Repeat("x", m.maxBytes/16+1)
	calls = 0
	get(big)
	get(big)
	if calls != 2 {
		t.Fatalf("a key over a sixteenth of the byte bound was kept (%d computations)", calls)
	}
}

// TestPlansShareParsedClassesSafely plans and renders an AWS class with JMESPath and a
// Vault class with anchors, merge keys and secretArgs from many goroutines at once (run
// with -race): the shared YAML trees and compiled expressions are only read, and every
// plan is the same.
func TestPlansShareParsedClassesSafely(t *testing.T) {
	spc := aws(`
- objectName: prod/db
  objectType: secretsmanager
  jmesPath:
    - {path: username, objectAlias: user}
    - {path: "keys(@) | sort(@) | join(',', @)", objectAlias: fields}
`, "region", "us-east-1")
	vaultSPC := vault(`
- &cert
  objectName: cert
  secretPath: pki/issue/web
  method: PUT
  secretArgs: &args {common_name: web.example, alt_names: [a, b]}
- <<: *cert
  objectName: cert-2
  secretArgs: *args
`)
	content := []ObjectContent{{Bytes: []byte(`{"username":"app","password":"pw"}`)}}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				p, err := NewPlan(spc, Mount{Namespace: "ns", PodName: fmt.Sprintf("pod-%d", i), ServiceAccount: "sa"})
				if err != nil {
					errs <- err
					return
				}
				v, err := NewPlan(vaultSPC, Mount{Namespace: "ns", PodName: "pod", ServiceAccount: "sa"})
				if err != nil || len(v.Objects) != 2 || v.Objects[1].SecretArgs["common_name"] != "web.example" {
					errs <- fmt.Errorf("vault plan %+v: %v", v, err)
					return
				}
				files, err := p.Render(content)
				if err != nil || len(files) != 3 || string(files[1].Bytes) != "app" || string(files[2].Bytes) != "password,username" {
					errs <- fmt.Errorf("render: %d files, %v", len(files), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
