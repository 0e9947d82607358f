package aws

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// FuzzAWSResponse reads one Secrets Manager secret or SSM parameter from an AWS whose
// answer to the read is arbitrary (seeds: the guide's secret as both services answer
// it, binary secrets, errors, truncated and non-JSON bodies). The backend never panics,
// fails only with the error kinds of package provider, never quotes a value of a
// successful answer in an error or a version, and on success writes exactly the
// SecretString, the decoded SecretBinary or the parameter's Value that the answer
// carries (an answer without one is a failure, never an empty file).
func FuzzAWSResponse(f *testing.F) {
	f.Add(false, uint16(200), `{"Name":"db","SecretString":"{\"username\":\"app\",\"password\":\"s3cr3t-value\"}","VersionId":"v1"}`)
	f.Add(true, uint16(200), `{"Parameters":[{"Name":"db","Type":"SecureString","Value":"s3cr3t-value","Version":3}],"InvalidParameters":[]}`)
	isolateFuzzEnv(f)
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, parameter bool, status uint16, body string) {
		if body == "" {
			return // the fake sends its own JSON error for an empty body
		}
		// A step past the coalescing window, so every input is a fresh read.
		e.clock.Advance(5 * time.Second)
		e.fake.clearFailures()
		obj, action := secretObject("db"), "GetSecretValue"
		if parameter {
			obj, action = parameterObject("db"), "GetParameters"
		}
		code := 200 + int(status)%400
		e.fake.failWithBody(action, code, body)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := e.backend.Fetch(ctx, awsPlan(providerclass.AWSParameters{Region: "us-east-1"}, obj), identity("app", "web"))
		var values []string
		if code < 300 {
			values = secretStrings(body)
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
		for _, v := range values {
			if strings.Contains(got[0].Version, v) {
				t.Fatalf("version %q quotes a value of the answer", got[0].Version)
			}
		}
		// The file holds a value the answer carried, never one made up from an answer
		// without any (an empty 204, a body cut short).
		if code >= 300 || !sameValue(got[0].Bytes, answeredValues(parameter, body)) {
			t.Fatalf("wrote %d bytes the %d answer does not carry as the value of db", len(got[0].Bytes), code)
		}
	})
}

// isolateFuzzEnv is isolateEnv for a fuzz target: once, not per input.
func isolateFuzzEnv(f *testing.F) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_STS", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_MAX_ATTEMPTS"} {
		f.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			f.Fatal(err)
		}
	}
	dir := f.TempDir()
	f.Setenv("AWS_CONFIG_FILE", dir+"/none")
	f.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/none")
	f.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// fuzzEnv is one fake AWS and backend for every input of a fuzz target, as newTestEnv
// makes them for a test.
func fuzzEnv(f *testing.F) *testEnv {
	clk := newClock()
	fake := &fakeAWS{
		secrets: map[string]map[string]*fakeSecret{}, params: map[string]map[string][]fakeParam{},
		calls: map[string]int{}, keys: map[string]int{}, fail: map[string]fakeFailure{},
		lifetime: time.Hour, now: clk.Now,
	}
	fake.srv = httptest.NewServer(http.HandlerFunc(fake.serve))
	f.Cleanup(fake.srv.Close)
	b, err := New(context.Background(), Options{
		DefaultRegion: "us-east-1", Endpoint: fake.URL(), Roles: roleMap{"app/web": "arn:aws:iam::123456789012:role/web"},
		MaxAttempts: 2, MaxBackoff: time.Millisecond, Now: clk.Now,
	})
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	return &testEnv{fake: fake, clock: clk, backend: b}
}

// answeredValues are the values an answer carries for object "db", as AWS's decoder
// reads it: the first JSON value of the body (what follows it is not read), every
// SecretString member and every decoded SecretBinary member (a duplicate member may
// be null, which that decoder skips), the Value members of each parameter named db.
// Strings come back as encoding/json reads them, invalid UTF-8 replaced; compare
// with sameValue.
func answeredValues(parameter bool, body string) []string {
	top, ok := firstJSONValue(body).([]jsonMember)
	if !ok {
		return nil
	}
	var values []string
	if parameter {
		for _, list := range membersNamed(top, "Parameters") {
			params, _ := list.([]any)
			for _, p := range params {
				members, _ := p.([]jsonMember)
				if slices.Contains(membersNamed(members, "Name"), any("db")) {
					values = append(values, stringMembers(members, "Value")...)
				}
			}
		}
		return values
	}
	values = stringMembers(top, "SecretString")
	for _, b64 := range stringMembers(top, "SecretBinary") {
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
			values = append(values, string(b))
		}
	}
	return values
}

// sameValue reports whether the bytes written equal a value answeredValues read, both
// with invalid UTF-8 replaced byte by byte as encoding/json does: AWS's decoder hands
// such a string over as sent.
func sameValue(written []byte, answered []string) bool {
	return slices.ContainsFunc(answered, func(v string) bool {
		return replaceInvalidUTF8([]byte(v)) == replaceInvalidUTF8(written)
	})
}

// replaceInvalidUTF8 replaces each byte that is not part of a UTF-8 sequence by U+FFFD.
func replaceInvalidUTF8(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		s.WriteRune(r) // utf8.RuneError for an invalid byte
		b = b[size:]
	}
	return s.String()
}

// jsonMember is one member of a JSON object, kept in order with its duplicates.
type jsonMember struct {
	name  string
	value any
}

// firstJSONValue decodes the first JSON value of body, objects as []jsonMember and
// arrays as []any; nil when it is not JSON.
func firstJSONValue(body string) any {
	dec := json.NewDecoder(strings.NewReader(body))
	var decode func() (any, error)
	decode = func() (any, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok {
		case json.Delim('{'):
			var members []jsonMember
			for dec.More() {
				name, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decode()
				if err != nil {
					return nil, err
				}
				members = append(members, jsonMember{name: name.(string), value: v})
			}
			_, err = dec.Token()
			return members, err
		case json.Delim('['):
			var elems []any
			for dec.More() {
				v, err := decode()
				if err != nil {
					return nil, err
				}
				elems = append(elems, v)
			}
			_, err = dec.Token()
			return elems, err
		}
		return tok, nil
	}
	v, err := decode()
	if err != nil {
		return nil
	}
	return v
}

// membersNamed are the values of the members called name.
func membersNamed(members []jsonMember, name string) []any {
	var values []any
	for _, m := range members {
		if m.name == name {
			values = append(values, m.value)
		}
	}
	return values
}

// stringMembers are the string values of the members called name.
func stringMembers(members []jsonMember, name string) []string {
	var values []string
	for _, v := range membersNamed(members, name) {
		if s, ok := v.(string); ok {
			values = append(values, s)
		}
	}
	return values
}

// secretStrings lists the secret values a JSON answer carries (SecretString, its string
// leaves when it is JSON, SecretBinary, a parameter's Value), those long enough to be
// told apart from the words of an error and not among the names the request carries.
func secretStrings(body string) []string {
	var out struct {
		SecretString, SecretBinary any
		Parameters                 []struct{ Value any }
	}
	// The first value, as AWS's decoder reads it.
	if json.NewDecoder(strings.NewReader(body)).Decode(&out) != nil {
		return nil
	}
	var values []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			if len(v) >= 8 && !strings.Contains("arn:aws:iam::123456789012:role/web us-east-1", v) {
				values = append(values, v)
			}
			var inner any
			if json.Unmarshal([]byte(v), &inner) == nil {
				if _, isString := inner.(string); !isString {
					walk(inner)
				}
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
	walk(out.SecretString)
	walk(out.SecretBinary)
	for _, p := range out.Parameters {
		walk(p.Value)
	}
	return values
}

// TestAnswerWithoutValueIsAnOutage: a 2xx answer that carries no value (an empty 204,
// a body cut to "{}", a parameter listed without its Value) is Unavailable, so a
// republish or a rotation keeps the content it has instead of writing an empty file.
func TestAnswerWithoutValueIsAnOutage(t *testing.T) {
	tests := []struct {
		name      string
		parameter bool
		status    int
		body      string
	}{
		{"no content", false, http.StatusNoContent, `{"SecretString":"dropped-by-204"}`},
		{"empty object", false, http.StatusOK, `{}`},
		{"secret without value", false, http.StatusOK, `{"Name":"db","VersionId":"v1"}`},
		{"parameter without value", true, http.StatusOK, `{"Parameters":[{"Name":"db","Version":3}],"InvalidParameters":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			obj, action := secretObject("db"), "GetSecretValue"
			if tc.parameter {
				obj, action = parameterObject("db"), "GetParameters"
			}
			e.fake.failWithBody(action, tc.status, tc.body)
			_, err := e.backend.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{Region: "us-east-1"}, obj), identity("app", "web"))
			if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), `"db"`) {
				t.Fatalf("error %v, want Unavailable naming the object", err)
			}
		})
	}
}
