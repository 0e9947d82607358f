package providerclass

import (
	"strings"
	"testing"
)

const secretValue = "hunter2-SECRET"

func TestRenderExtractionResults(t *testing.T) {
	p, err := NewPlan(aws(`
- objectName: db
  objectType: secretsmanager
  jmesPath:
    - {path: user, objectAlias: user}
    - {path: port, objectAlias: port}
    - {path: ratio, objectAlias: ratio}
    - {path: tls, objectAlias: tls}
    - {path: nested.key, objectAlias: nested}
    - {path: "hosts[1]", objectAlias: host}
    - {path: "join(',', hosts)", objectAlias: hosts}
`), Mount{})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	doc := `{"user":"app\u00e9\n","port":5432,"ratio":1.5,"tls":true,"nested":{"key":"` + secretValue + `"},"hosts":["a","b"]}`
	files, err := p.Render([]ObjectContent{{Bytes: []byte(doc)}})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = string(f.Bytes)
	}
	assertEqual(t, "files", map[string]string{
		"db": doc, "user": "appé\n", "port": "5432", "ratio": "1.5", "tls": "true",
		"nested": secretValue, "host": "b", "hosts": "a,b",
	}, got)
}

func TestRenderUsesDocumentWhenGiven(t *testing.T) {
	p, err := NewPlan(vault("- {objectName: pw, secretPath: kv/a, secretKey: password, jmesPath: [{path: meta.owner, objectAlias: owner}]}"), Mount{})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte{0xff, 0x00, 0xfe} // the object's own bytes need not be JSON
	files, err := p.Render([]ObjectContent{{Bytes: raw, Document: []byte(`{"password":"x","meta":{"owner":"team"}}`)}})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	assertEqual(t, "files", []File{{Path: "pw", Mode: 0o644, Bytes: raw}, {Path: "owner", Mode: 0o644, Bytes: []byte("team")}}, files)
}

func TestRenderRejects(t *testing.T) {
	p, err := NewPlan(aws(`
- {objectName: plain, objectType: ssmparameter}
- objectName: db
  objectType: secretsmanager
  jmesPath:
    - {path: user, objectAlias: user}
    - {path: the.path, objectAlias: the-alias}
`), Mount{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		doc    string
		field  string
		reason string
	}{
		{"missing", `{"user":"u","other":"` + secretValue + `"}`, "objects[1].jmesPath[1].path", "matches nothing"},
		{"null", `{"user":"u","the":{"path":null}}`, "objects[1].jmesPath[1].path", "matches nothing"},
		{"object", `{"user":"u","the":{"path":{"k":"` + secretValue + `"}}}`, "objects[1].jmesPath[1].path", "an object"},
		{"array", `{"user":"u","the":{"path":["` + secretValue + `"]}}`, "objects[1].jmesPath[1].path", "an array"},
		{"not JSON", secretValue, "objects[1].jmesPath", "not a JSON document"},
		{"truncated JSON", `{"user":"` + secretValue, "objects[1].jmesPath", "not a JSON document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := p.Render([]ObjectContent{{Bytes: []byte("x")}, {Bytes: []byte(tc.doc)}})
			if files != nil {
				t.Errorf("got files along with the error")
			}
			requireFieldError(t, err, tc.field, tc.reason)
			if strings.Contains(err.Error(), secretValue) {
				t.Fatalf("error reveals the secret value: %v", err)
			}
			if !strings.Contains(err.Error(), `"db"`) {
				t.Fatalf("error does not name the object: %v", err)
			}
		})
	}
}

func TestRenderNeedsOneContentPerObject(t *testing.T) {
	p, err := NewPlan(aws("- {objectName: a, objectType: ssmparameter}\n- {objectName: b, objectType: ssmparameter}"), Mount{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 3} {
		if files, err := p.Render(make([]ObjectContent, n)); err == nil || files != nil {
			t.Errorf("%d contents for 2 objects: files %v, err %v", n, files, err)
		}
	}
}

func TestRenderHandMadePlan(t *testing.T) {
	// Plans made without NewPlan (tests of other packages) compile on the fly.
	p := &Plan{Objects: []Object{{Field: "objects[0]", Name: "o", File: "o", Mode: 0o600,
		Extractions: []Extraction{{Field: "objects[0].jmesPath[0]", Path: "a.b", File: "ab", Mode: 0o400}}}}}
	files, err := p.Render([]ObjectContent{{Bytes: []byte(`{"a":{"b":"c"}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "files", []File{{Path: "o", Mode: 0o600, Bytes: []byte(`{"a":{"b":"c"}}`)}, {Path: "ab", Mode: 0o400, Bytes: []byte("c")}}, files)
	p.Objects[0].Extractions[0].Path = "a.["
	if _, err := p.Render([]ObjectContent{{Bytes: []byte(`{}`)}}); err == nil {
		t.Fatal("no error for an invalid hand-made expression")
	}
}
