package aws

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAWS is a small AWS on an httptest server, speaking the wire protocols the SDK
// uses: JSON 1.1 for Secrets Manager and SSM, the query protocol for STS. It counts
// requests by action and region and records which access key signed each.
type fakeAWS struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	secrets  map[string]map[string]*fakeSecret // region → name → secret
	params   map[string]map[string][]fakeParam // region → name → versions
	calls    map[string]int                    // "Action" and "Action@region"
	keys     map[string]int                    // access key id → requests signed with it
	fail     map[string]fakeFailure            // "Action" or "Action@region" or "Action@region@name"
	tokens   []string                          // web identity tokens received
	minted   int
	lifetime time.Duration
	now      func() time.Time
	agentTok []string // Authorization headers the pod identity agent received
}

type fakeSecret struct {
	arn      string
	versions []fakeSecretVersion
}

type fakeSecretVersion struct {
	id     string
	str    *string
	bin    []byte
	stages []string
}

type fakeParam struct {
	typ, value string
	labels     []string
}

type fakeFailure struct {
	status int
	code   string
	body   string // sent as is instead of a JSON error when set
}

func newFakeAWS(t *testing.T) *fakeAWS {
	t.Helper()
	f := &fakeAWS{
		t:        t,
		secrets:  map[string]map[string]*fakeSecret{},
		params:   map[string]map[string][]fakeParam{},
		calls:    map[string]int{},
		keys:     map[string]int{},
		fail:     map[string]fakeFailure{},
		lifetime: time.Hour,
		now:      time.Now,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAWS) URL() string { return f.srv.URL }

// putSecret adds a version of a string secret and moves AWSCURRENT to it.
func (f *fakeAWS) putSecret(region, name, value string) string {
	return f.putSecretVersion(region, name, &value, nil, "AWSCURRENT")
}

func (f *fakeAWS) putSecretVersion(region, name string, str *string, bin []byte, stages ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets[region] == nil {
		f.secrets[region] = map[string]*fakeSecret{}
	}
	s := f.secrets[region][name]
	if s == nil {
		s = &fakeSecret{arn: fmt.Sprintf("arn:aws:secretsmanager:%s:123456789012:secret:%s-AbCdEf", region, name)}
		f.secrets[region][name] = s
	}
	for i := range s.versions {
		s.versions[i].stages = removeStages(s.versions[i].stages, stages)
	}
	id := fmt.Sprintf("v%d-%s", len(s.versions)+1, strings.ReplaceAll(name, "/", "-"))
	s.versions = append(s.versions, fakeSecretVersion{id: id, str: str, bin: bin, stages: stages})
	return id
}

func removeStages(have, drop []string) []string {
	var out []string
	for _, s := range have {
		keep := true
		for _, d := range drop {
			keep = keep && s != d
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeAWS) putParam(region, name, typ, value string, labels ...string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.params[region] == nil {
		f.params[region] = map[string][]fakeParam{}
	}
	f.params[region][name] = append(f.params[region][name], fakeParam{typ: typ, value: value, labels: labels})
	return len(f.params[region][name])
}

func (f *fakeAWS) failWith(key string, status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[key] = fakeFailure{status: status, code: code}
}

func (f *fakeAWS) failWithBody(key string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[key] = fakeFailure{status: status, body: body}
}

func (f *fakeAWS) clearFailures() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = map[string]fakeFailure{}
}

func (f *fakeAWS) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func (f *fakeAWS) keyCount() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.keys {
		out[k] = v
	}
	return out
}

var credentialScope = regexp.MustCompile(`Credential=([^/]+)/[0-9]+/([^/]+)/`)

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	region, key := "", ""
	if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		key, region = m[1], m[2]
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		action := target[strings.Index(target, ".")+1:]
		var in map[string]any
		_ = json.Unmarshal(body, &in)
		f.record(action, region, key)
		if f.failed(w, action, region, in, false) {
			return
		}
		out, fail := f.jsonAction(action, region, in)
		if fail != nil {
			writeJSONError(w, *fail)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	// STS is unsigned here; its region comes from the endpoint, which is shared.
	f.record(action, "", "")
	if f.failed(w, action, "", nil, true) {
		return
	}
	if action != "AssumeRoleWithWebIdentity" {
		http.Error(w, "unexpected action "+action, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, form.Get("WebIdentityToken"))
	f.minted++
	n := f.minted
	exp := f.now().Add(f.lifetime).UTC().Format(time.RFC3339)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>`+
		`<AccessKeyId>ASIA%d</AccessKeyId><SecretAccessKey>secret%d</SecretAccessKey><SessionToken>session%d</SessionToken>`+
		`<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`, n, n, n, exp)
}

func (f *fakeAWS) record(action, region, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[action]++
	f.calls[action+"@"+region]++
	if key != "" {
		f.keys[key]++
	}
}

func (f *fakeAWS) failed(w http.ResponseWriter, action, region string, in map[string]any, query bool) bool {
	f.mu.Lock()
	name, _ := in["SecretId"].(string)
	fail, ok := f.fail[action+"@"+region+"@"+name]
	if !ok {
		fail, ok = f.fail[action+"@"+region]
	}
	if !ok {
		fail, ok = f.fail[action]
	}
	f.mu.Unlock()
	if !ok {
		return false
	}
	if query {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(fail.status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>refused by the fake</Message></Error></ErrorResponse>`, fail.code)
		return true
	}
	writeJSONError(w, fail)
	return true
}

func writeJSONError(w http.ResponseWriter, fail fakeFailure) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(fail.status)
	if fail.body != "" {
		_, _ = io.WriteString(w, fail.body)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": fail.code, "Message": "refused by the fake"})
}

func (f *fakeAWS) jsonAction(action, region string, in map[string]any) (any, *fakeFailure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch action {
	case "GetSecretValue":
		id, _ := in["SecretId"].(string)
		vid, _ := in["VersionId"].(string)
		stage, _ := in["VersionStage"].(string)
		return f.secretValue(region, id, vid, stage)
	case "DescribeSecret":
		id, _ := in["SecretId"].(string)
		s := f.lookupSecret(region, id)
		if s == nil {
			return nil, &fakeFailure{status: 400, code: "ResourceNotFoundException"}
		}
		stages := map[string][]string{}
		for _, v := range s.versions {
			if len(v.stages) > 0 {
				stages[v.id] = v.stages
			}
		}
		return map[string]any{"ARN": s.arn, "VersionIdsToStages": stages}, nil
	case "BatchGetSecretValue":
		ids, _ := in["SecretIdList"].([]any)
		var values, errs []any
		for _, raw := range ids {
			id, _ := raw.(string)
			v, fail := f.secretValue(region, id, "", "")
			if fail != nil {
				errs = append(errs, map[string]string{"SecretId": id, "ErrorCode": fail.code, "Message": "no"})
				continue
			}
			values = append(values, v)
		}
		return map[string]any{"SecretValues": values, "Errors": errs}, nil
	case "GetParameters":
		names, _ := in["Names"].([]any)
		if len(names) > 10 {
			return nil, &fakeFailure{status: 400, code: "ValidationException"}
		}
		if dec, _ := in["WithDecryption"].(bool); !dec {
			return nil, &fakeFailure{status: 400, code: "ValidationException"}
		}
		params, invalid := []any{}, []string{}
		for _, raw := range names {
			sel, _ := raw.(string)
			p, ok := f.parameter(region, sel)
			if !ok {
				invalid = append(invalid, sel)
				continue
			}
			params = append(params, p)
		}
		return map[string]any{"Parameters": params, "InvalidParameters": invalid}, nil
	}
	return nil, &fakeFailure{status: 400, code: "UnknownOperationException"}
}

func (f *fakeAWS) lookupSecret(region, id string) *fakeSecret {
	for name, s := range f.secrets[region] {
		if id == name || id == s.arn {
			return s
		}
	}
	return nil
}

func (f *fakeAWS) secretValue(region, id, vid, stage string) (map[string]any, *fakeFailure) {
	s := f.lookupSecret(region, id)
	if s == nil {
		return nil, &fakeFailure{status: 400, code: "ResourceNotFoundException"}
	}
	if stage == "" && vid == "" {
		stage = "AWSCURRENT"
	}
	for _, v := range s.versions {
		if (vid == "" || v.id == vid) && (stage == "" || contains(v.stages, stage)) {
			out := map[string]any{"ARN": s.arn, "Name": nameOf(f.secrets[region], s), "VersionId": v.id, "VersionStages": v.stages}
			if v.str != nil {
				out["SecretString"] = *v.str
			} else {
				out["SecretBinary"] = base64.StdEncoding.EncodeToString(v.bin)
			}
			return out, nil
		}
	}
	return nil, &fakeFailure{status: 400, code: "ResourceNotFoundException"}
}

func nameOf(m map[string]*fakeSecret, s *fakeSecret) string {
	for n, v := range m {
		if v == s {
			return n
		}
	}
	return ""
}

// parameter answers name, name:version and name:label as SSM does: with the bare name.
func (f *fakeAWS) parameter(region, sel string) (map[string]any, bool) {
	if strings.HasPrefix(sel, "arn:") {
		sel = sel[strings.Index(sel, ":parameter")+len(":parameter"):]
	}
	name, which, _ := strings.Cut(sel, ":")
	versions := f.params[region][name]
	if len(versions) == 0 {
		return nil, false
	}
	n := len(versions)
	if which != "" {
		n = 0
		if v, err := strconv.Atoi(which); err == nil {
			if v >= 1 && v <= len(versions) {
				n = v
			}
		} else {
			for i, p := range versions {
				if contains(p.labels, which) {
					n = i + 1
				}
			}
		}
		if n == 0 {
			return nil, false
		}
	}
	p := versions[n-1]
	return map[string]any{
		"Name": name, "Type": p.typ, "Value": p.value, "Version": n,
		"ARN": fmt.Sprintf("arn:aws:ssm:%s:123456789012:parameter%s", region, name),
	}, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fakeJWT makes an unsigned JWT with a sub claim; the fake STS does not verify it.
func fakeJWT(sub string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": sub, "aud": []string{"sts.amazonaws.com"}})
	return enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("sig"))
}
