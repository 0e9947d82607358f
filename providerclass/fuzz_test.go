package providerclass

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNewPlan feeds arbitrary objects documents and parameters to both dialects: the
// planner must never panic, must fail only with an *Error, and every file it plans
// must pass ValidateFileName and be unique.
func FuzzNewPlan(f *testing.F) {
	for _, seed := range []struct{ provider, objects, translation, secretKey string }{
		{"aws", "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: u}]}", "", "u"},
		{"aws", "- objectName: '" + smArn + "'", "False", "k"},
		{"aws", "- {objectName: /a/../b, objectType: ssmparameter, filePermission: '0600'}", "false", ""},
		{"aws", "- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: {objectName: b}}", "-", "k"},
		{"vault", "- {objectName: a, secretPath: kv/a?version=2, secretKey: k, method: post, secretArgs: {x: [1]}}", "", "a"},
		{"vault", "- {objectName: x/y, secretPath: kv/a, jmesPath: [{path: 'a.b', objectAlias: ..data}]}", "", "x/y"},
		{"vault", "- &a {objectName: a, secretPath: kv/a}\n- *a", "", ""},
		{"aws", "[", "", ""},
		{"vault", "- {objectName: a, secretPath: kv/a, filePermission: 0o1777}", "", ""},
	} {
		f.Add(seed.provider, seed.objects, seed.translation, seed.secretKey)
	}
	f.Fuzz(func(t *testing.T, provider, objects, translation, dataObject string) {
		if len(objects) > 1<<16 {
			return
		}
		spc := class(provider, map[string]string{
			"objects": objects, "pathTranslation": translation, "roleName": "r", "failoverRegion": "us-west-2",
		}, syncTo("s", dataObject, "k"))
		p, err := NewPlan(spc, Mount{})
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if pe.Field == "" || pe.Reason == "" {
				t.Fatalf("error without field or reason: %#v", pe)
			}
			return
		}
		seen := map[string]bool{}
		for _, f := range plannedFiles(p) {
			if err := ValidateFileName(f.Path, true); err != nil {
				t.Fatalf("planned file %q is invalid: %v", f.Path, err)
			}
			if seen[f.Path] {
				t.Fatalf("file %q planned twice", f.Path)
			}
			seen[f.Path] = true
			if f.Mode&^0o777 != 0 {
				t.Fatalf("file %q has mode %o", f.Path, f.Mode)
			}
		}
		// Rendering arbitrary content must not panic either.
		contents := make([]ObjectContent, len(p.Objects))
		for i := range contents {
			contents[i] = ObjectContent{Bytes: []byte(objects)}
		}
		_, _ = p.Render(contents)
	})
}

// FuzzValidateFileName checks the validator's promise: an accepted name is relative,
// stays inside the folder, and (without allowSlash) is a single component.
func FuzzValidateFileName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "/a", "a/../b", "..data", "a\x00", ".", "a//b", strings.Repeat("x", 300)} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, name string, allowSlash bool) {
		if ValidateFileName(name, allowSlash) != nil {
			return
		}
		if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) || len(name) > MaxFilePathLength {
			t.Fatalf("accepted %q", name)
		}
		if !allowSlash && strings.Contains(name, "/") {
			t.Fatalf("accepted %q with a separator", name)
		}
		depth := 0
		for _, c := range strings.Split(name, "/") {
			switch {
			case c == "" || c == "." || strings.HasPrefix(c, ".."):
				t.Fatalf("accepted %q with component %q", name, c)
			case len(c) > MaxFileNameComponent:
				t.Fatalf("accepted %q with a long component", name)
			}
			depth++
		}
		if depth < 1 {
			t.Fatalf("accepted %q with no component", name)
		}
	})
}
