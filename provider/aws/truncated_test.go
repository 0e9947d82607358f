package aws

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/go-logr/logr/funcr"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// cutter sits in front of the fake and cuts the answers of chosen actions short: status,
// headers with the whole body's Content-Length, half the body, then a closed connection.
type cutter struct {
	fake *fakeAWS
	srv  *httptest.Server

	mu   sync.Mutex
	left map[string]int // action → answers still to cut; negative: every answer
	cut  map[string]int // action → answers cut
}

func newCutter(t *testing.T, fake *fakeAWS, left map[string]int) *cutter {
	t.Helper()
	c := &cutter{fake: fake, left: left, cut: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cutter) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	action := r.Header.Get("X-Amz-Target")
	if i := strings.Index(action, "."); i >= 0 {
		action = action[i+1:]
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		action = form.Get("Action")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	c.fake.serve(rec, r)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	if !c.take(action) || rec.Body.Len() == 0 {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func (c *cutter) take(action string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.left[action]
	if !ok || n == 0 {
		return false
	}
	if n > 0 {
		c.left[action] = n - 1
	}
	c.cut[action]++
	return true
}

func (c *cutter) cuts(action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut[action]
}

// logSink collects every line the backend logs.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) add(prefix, args string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, prefix+" "+args)
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// TestTruncatedAnswers: an answer cut short is retried like a reset connection, within
// MaxAttempts: cut once, the fetch succeeds with one more request; cut every time, it
// fails Unavailable after exactly MaxAttempts requests. The SDK's own complaints about
// the cut body reach the backend's logger, and neither they nor the error quote a value.
func TestTruncatedAnswers(t *testing.T) {
	const attempts = 3
	const value = `{"password":"cut-short-value-1234567890"}`
	tests := []struct {
		name    string
		cut     map[string]int
		objects []providerclass.Object
		action  string // the action whose requests are counted
		wantErr error
		want    int // requests of action
	}{
		{name: "STS cut once", cut: map[string]int{"AssumeRoleWithWebIdentity": 1},
			objects: []providerclass.Object{secretObject("prod/a")}, action: "AssumeRoleWithWebIdentity", want: 2},
		{name: "GetSecretValue cut once", cut: map[string]int{"GetSecretValue": 1},
			objects: []providerclass.Object{secretObject("prod/a")}, action: "GetSecretValue", want: 2},
		{name: "BatchGetSecretValue cut twice", cut: map[string]int{"BatchGetSecretValue": 2},
			objects: []providerclass.Object{secretObject("prod/a"), secretObject("prod/b")}, action: "BatchGetSecretValue", want: 3},
		{name: "GetParameters cut once", cut: map[string]int{"GetParameters": 1},
			objects: []providerclass.Object{parameterObject("/prod/p")}, action: "GetParameters", want: 2},
		{name: "STS always cut", cut: map[string]int{"AssumeRoleWithWebIdentity": -1},
			objects: []providerclass.Object{secretObject("prod/a")}, action: "AssumeRoleWithWebIdentity", wantErr: provider.ErrUnavailable, want: attempts},
		{name: "GetSecretValue always cut", cut: map[string]int{"GetSecretValue": -1},
			objects: []providerclass.Object{secretObject("prod/a")}, action: "GetSecretValue", wantErr: provider.ErrUnavailable, want: attempts},
		{name: "GetParameters always cut", cut: map[string]int{"GetParameters": -1},
			objects: []providerclass.Object{parameterObject("/prod/p")}, action: "GetParameters", wantErr: provider.ErrUnavailable, want: attempts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logSink{}
			env := newTestEnv(t, nil)
			front := newCutter(t, env.fake, tc.cut)
			opts := env.backend.opts
			opts.Endpoint = front.srv.URL
			opts.MaxAttempts = attempts
			opts.Logger = funcr.New(logs.add, funcr.Options{Verbosity: 9})
			b, err := New(context.Background(), opts)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			f := env.fake
			f.putSecret("us-east-1", "prod/a", value)
			f.putSecret("us-east-1", "prod/b", value)
			f.putParam("us-east-1", "/prod/p", "SecureString", value)

			got, err := b.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, tc.objects...), identity("app", "web"))
			if n := f.count(tc.action); n != tc.want {
				t.Errorf("%s requests = %d, want %d", tc.action, n, tc.want)
			}
			if front.cuts(tc.action) == 0 {
				t.Fatalf("no %s answer was cut", tc.action)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Fetch error = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "cut-short-value") {
					t.Errorf("error quotes the value: %v", err)
				}
			} else {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				for i, c := range got {
					if string(c.Bytes) != value {
						t.Errorf("object %d = %q, want the stored value", i, c.Bytes)
					}
				}
			}
			text := logs.text()
			if strings.Contains(text, "cut-short-value") || strings.Contains(text, "secret1") {
				t.Errorf("the log holds a value or credential:\n%s", text)
			}
		})
	}
}

// TestTruncatedErrors: which failures count as an answer cut short. A body that ended
// inside an XML element without a Content-Length to say so is one; a body that is
// whole but wrong is not, nor is anything else.
func TestTruncatedErrors(t *testing.T) {
	xmlErr := func(doc string) error {
		var v struct{}
		return xml.NewDecoder(strings.NewReader(doc)).Decode(&v)
	}
	deser := func(err error) error {
		return fmt.Errorf("operation error STS: AssumeRoleWithWebIdentity: %w",
			&smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", err)})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"body shorter than its length", deser(io.ErrUnexpectedEOF), true},
		{"body reader's error wrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"XML ended inside an element", deser(xmlErr("<Response><Result><Credentials>")), true},
		{"XML whole but malformed", deser(xmlErr("<Response></Other>")), false},
		{"XML error outside deserialization", xmlErr("<Response><Result>"), false},
		{"JSON whole but malformed", deser(errors.New("invalid character 'x'")), false},
		{"canceled", context.Canceled, false},
		{"clean EOF", io.EOF, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := truncated(tc.err); got != tc.want {
				t.Errorf("truncated(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
