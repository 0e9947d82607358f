package providerclass

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jmespath/go-jmespath"
)

// FuzzJMESPath fuzzes jmesPath/objectAlias lists in both dialects and evaluates them on
// arbitrary content through NewPlan and Render. An accepted entry names a valid file;
// a refusal is an *Error naming the entry's field; Render never panics, writes each
// extraction as the JMESPath library evaluates it (strings raw, numbers and booleans as
// JSON), and fails naming the field without quoting any value of the document.
func FuzzJMESPath(f *testing.F) {
	f.Add(true, "username", "db-username", "password", "db-password", []byte(`{"username":"app","password":"pw-value-1"}`))
	f.Fuzz(func(t *testing.T, awsDialect bool, path1, alias1, path2, alias2 string, content []byte) {
		obj := map[string]any{"objectName": "doc", "jmesPath": []map[string]string{
			{"path": path1, "objectAlias": alias1}, {"path": path2, "objectAlias": alias2},
		}}
		provider := "vault"
		if awsDialect {
			provider, obj["objectType"] = "aws", "secretsmanager"
		} else {
			obj["secretPath"] = "kv/doc"
		}
		// JSON is YAML: the list is written in flow style, which round-trips any string
		// (yaml.v3's block emitter does not, e.g. "\n0" as a nested value).
		objects, err := json.Marshal([]any{obj})
		if err != nil {
			return
		}
		params := map[string]string{"objects": string(objects)}
		if !awsDialect {
			params["roleName"] = "r"
		}
		p, ok := planOrFieldError(t, provider, params)
		if !ok {
			_, err := NewPlan(class(provider, params), Mount{Namespace: "ns", ServiceAccount: "sa"})
			// A string YAML cannot carry (a raw DEL or C1 control) fails the document.
			checkFieldError(t, err, "objects[0].jmesPath[", "parameters.objects")
			return
		}
		if len(p.Objects) != 1 || len(p.Objects[0].Extractions) != 2 {
			t.Fatalf("planned %d objects", len(p.Objects))
		}
		files, err := p.Render([]ObjectContent{{Bytes: content, Version: "1"}})
		if err != nil {
			pe := checkFieldError(t, err, "objects[0].jmesPath")
			for _, v := range documentStrings(content) {
				if len(v) >= 8 && !strings.Contains(path1+alias1+path2+alias2, v) && strings.Contains(pe.Reason, v) {
					t.Fatalf("render error quotes a value of the document: %v", err)
				}
			}
			return
		}
		var doc any
		if err := json.Unmarshal(content, &doc); err != nil {
			t.Fatalf("rendered extractions of content that is not JSON")
		}
		for i, e := range p.Objects[0].Extractions {
			got := files[1+i]
			if got.Path != e.File {
				t.Fatalf("extraction %d written to %q, planned %q", i, got.Path, e.File)
			}
			// Members of a JSON object come out in Go's map order when an expression
			// enumerates them (keys, values, an object wildcard), so neither Render nor
			// the library repeats itself there: those results are not compared.
			if enumeratesMembers(e.Path) {
				continue
			}
			if want, ok := libraryResult(e.Path, doc); ok && string(got.Bytes) != want {
				t.Fatalf("extraction %q wrote %q, the library gives %q", e.Path, got.Bytes, want)
			}
		}
	})
}

// libraryResult evaluates expr with the JMESPath library itself and encodes the
// result as Render promises; ok is false when the library panics or the result is
// not writable.
func libraryResult(expr string, doc any) (out string, ok bool) {
	defer func() {
		if recover() != nil {
			out, ok = "", false
		}
	}()
	v, err := jmespath.Search(expr, doc)
	if err != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case float64, bool:
		b, err := json.Marshal(v)
		return string(b), err == nil
	}
	return "", false
}

// enumeratesMembers reports whether expr may list an object's members, whose order the
// JMESPath library takes from Go's map iteration.
func enumeratesMembers(expr string) bool {
	return strings.Contains(expr, "keys") || strings.Contains(expr, "values") || strings.Contains(expr, "*")
}

// documentStrings lists the string leaves and keys of a JSON document.
func documentStrings(content []byte) []string {
	var doc any
	if json.Unmarshal(content, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				out = append(out, k)
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}
