package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// rawVault answers the login and the mount lookup like Vault, and every read with the
// status and body the fuzzer chose.
type rawVault struct {
	mu     sync.Mutex
	kv2    bool
	status int
	body   []byte
}

func (v *rawVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case strings.HasSuffix(path, "/login"):
		_, _ = w.Write([]byte(`{"auth":{"client_token":"fuzz-client-token","lease_duration":3600,"renewable":true}}`))
	case strings.HasPrefix(path, "sys/internal/ui/mounts/"):
		version := "1"
		if v.kv2 {
			version = "2"
		}
		_, _ = w.Write([]byte(`{"data":{"path":"secret/","type":"kv","options":{"version":"` + version + `"}}}`))
	default:
		w.WriteHeader(v.status)
		_, _ = w.Write(v.body)
	}
}

// FuzzVaultResponse reads one object from a Vault whose answer to the read is
// arbitrary (seeds: KV v1 and v2 shapes of the guide's secrets, errors, non-JSON). The
// backend never panics, fails only with the error kinds of package provider, never
// quotes a value of a successful answer in an error or a version, and on success writes
// the secretKey's value (or the whole data) consistently with the extraction document.
func FuzzVaultResponse(f *testing.F) {
	f.Add(true, uint16(200), []byte(`{"data":{"data":{"username":"app","password":"s3cr3t-value"},"metadata":{"version":3}}}`), "password", "")
	rv := &rawVault{}
	srv := httptest.NewUnstartedServer(rv)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	// Every input makes a backend with its own HTTP transport; without keep-alives none
	// of them holds an idle connection (two fds and two goroutines in this process)
	// until its idle timeout, which over a long run exhausts the fds.
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, kv2 bool, status uint16, body []byte, secretKey, encoding string) {
		p, ok := fuzzPlan(secretKey, encoding)
		if !ok {
			return
		}
		code := 200 + int(status)%400
		rv.mu.Lock()
		rv.kv2, rv.status, rv.body = kv2, code, body
		rv.mu.Unlock()
		b, err := New(Options{DefaultAddress: srv.URL, Keys: testKey, RetryWait: time.Millisecond, CoalesceWindow: -1,
			Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := b.Fetch(ctx, p, identity("apps", "app-sa", "fuzz-jwt"))
		var values []string
		if code < 300 {
			values = jsonStrings(body, secretKey+encoding)
		}
		if err != nil {
			if !provider.HasKind(err) {
				t.Fatalf("error of no provider kind: %v", err)
			}
			for _, v := range values {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error quotes a value of the answer: %v", err)
				}
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("%d contents for one object", len(got))
		}
		c := got[0]
		if c.Version == "" {
			t.Fatalf("content without a version")
		}
		for _, v := range values {
			if strings.Contains(c.Version, v) {
				t.Fatalf("version quotes a value of the answer")
			}
		}
		var doc map[string]any
		if err := json.Unmarshal(c.Document, &doc); err != nil {
			t.Fatalf("document is not a JSON object: %v", err)
		}
		if secretKey == "" && !bytes.Equal(c.Bytes, c.Document) {
			t.Fatalf("without secretKey the file is not the whole data")
		}
		if s, ok := doc[secretKey].(string); ok && secretKey != "" && p.Objects[0].Encoding == "utf-8" && string(c.Bytes) != s {
			t.Fatalf("secretKey %q wrote %q, the data holds %q", secretKey, c.Bytes, s)
		}
	})
}

// fuzzPlan is one KV object at secret/fuzz with the fuzzed secretKey and encoding, or
// false when the planner refuses them (its own target fuzzes that).
func fuzzPlan(secretKey, encoding string) (*providerclass.Plan, bool) {
	obj, err := json.Marshal(map[string]string{"objectName": "o", "secretPath": "secret/fuzz", "secretKey": secretKey, "encoding": encoding})
	if err != nil {
		return nil, false
	}
	// JSON is YAML: the objects list is one flow mapping.
	spc := &secretsstorev1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "spc"},
		Spec: secretsstorev1.SecretProviderClassSpec{Provider: "vault",
			Parameters: map[string]string{"roleName": "app", "objects": "[" + string(obj) + "]"}},
	}
	p, err := providerclass.NewPlan(spc, providerclass.Mount{Namespace: "apps", ServiceAccount: "app-sa", PodName: "pod"})
	return p, err == nil
}

// jsonStrings lists the string leaves of a JSON document long enough to be told apart
// from words an error legitimately uses, leaving out those within known.
func jsonStrings(body []byte, known string) []string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) >= 8 && !strings.Contains(known, v) && !strings.Contains("secret/fuzz fuzz-client-token", v) {
				out = append(out, v)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}
