package providerclass

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// These targets fuzz each dialect's parameters through NewPlan and Render as a mount
// would: seeds are in testdata/fuzz/<Target>, from the guide's classes and the
// bad-input corpus. Each checks what callers rely on, not only that nothing panics.

// FuzzAWSParameters: an AWS-dialect class either plans into files that are valid,
// unique, translated as pathTranslation says and authenticated with the audience
// usePodIdentity picks, or is refused with an *Error naming a parameter or object
// field; rendering any content then never panics and fails only with a field error.
func FuzzAWSParameters(f *testing.F) {
	f.Add("- {objectName: db, objectType: secretsmanager}", "", "", "", "", "", []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, objects, region, failoverRegion, pathTranslation, usePodIdentity, addressType string, content []byte) {
		if len(objects) > 1<<14 {
			return
		}
		params := map[string]string{"objects": objects}
		for k, v := range map[string]string{"region": region, "failoverRegion": failoverRegion,
			"pathTranslation": pathTranslation, "usePodIdentity": usePodIdentity, "preferredAddressType": addressType} {
			if v != "" {
				params[k] = v
			}
		}
		p, ok := planOrFieldError(t, "aws", params)
		if !ok {
			return
		}
		if p.Dialect != DialectAWS || p.AWS == nil || p.Vault != nil {
			t.Fatalf("aws class planned as dialect %q", p.Dialect)
		}
		wantAud := AudienceSTS
		if p.AWS.UsePodIdentity {
			wantAud = AudiencePodIdentity
		}
		if p.TokenAudience() != wantAud {
			t.Fatalf("token audience %q, want %q", p.TokenAudience(), wantAud)
		}
		if want, _ := strconv.ParseBool(usePodIdentity); want != p.AWS.UsePodIdentity {
			t.Fatalf("usePodIdentity %q planned as %v", usePodIdentity, p.AWS.UsePodIdentity)
		}
		if tr := p.AWS.PathTranslation; tr != "" && tr != "/" {
			for _, f := range plannedFiles(p) {
				if strings.Contains(f.Path, "/") {
					t.Fatalf("pathTranslation %q left a separator in %q", tr, f.Path)
				}
			}
		}
		for _, o := range p.Objects {
			if o.Type != TypeSecretsManager && o.Type != TypeSSMParameter {
				t.Fatalf("%s planned with objectType %q", o.Field, o.Type)
			}
			if o.Failover != nil && p.AWS.FailoverRegion == "" {
				t.Fatalf("%s has a failoverObject without failoverRegion", o.Field)
			}
		}
		renderChecked(t, p, content)
	})
}

// FuzzVaultParameters: a Vault-dialect class either plans (roleName set, the audience
// it asks for, objects with a method, an encoding and objectName as their file) or is
// refused with an *Error naming the field; rendering any content never panics.
func FuzzVaultParameters(f *testing.F) {
	f.Add("- {objectName: db, secretPath: kv/db, secretKey: password}", "r", "", "", "", "", "", []byte(`{"password":"x"}`))
	f.Fuzz(func(t *testing.T, objects, roleName, address, audience, authMount, k8sMount, skipTLS string, content []byte) {
		if len(objects) > 1<<14 {
			return
		}
		params := map[string]string{"objects": objects}
		for k, v := range map[string]string{"roleName": roleName, "vaultAddress": address, "audience": audience,
			"vaultAuthMountPath": authMount, "vaultKubernetesMountPath": k8sMount, "vaultSkipTLSVerify": skipTLS} {
			if v != "" {
				params[k] = v
			}
		}
		p, ok := planOrFieldError(t, "vault", params)
		if !ok {
			return
		}
		if p.Dialect != DialectVault || p.Vault == nil || p.AWS != nil {
			t.Fatalf("vault class planned as dialect %q", p.Dialect)
		}
		if p.Vault.RoleName == "" {
			t.Fatalf("planned without roleName")
		}
		wantAud := audience
		if wantAud == "" {
			wantAud = DefaultVaultAudience
		}
		if p.TokenAudience() != wantAud {
			t.Fatalf("token audience %q, want %q", p.TokenAudience(), wantAud)
		}
		for _, o := range p.Objects {
			switch {
			case o.Type != TypeVault:
				t.Fatalf("%s planned with type %q", o.Field, o.Type)
			case o.Method != "GET" && o.Method != "POST" && o.Method != "PUT":
				t.Fatalf("%s planned with method %q", o.Field, o.Method)
			case o.Encoding != "utf-8" && o.Encoding != "base64" && o.Encoding != "hex":
				t.Fatalf("%s planned with encoding %q", o.Field, o.Encoding)
			case o.File != o.Name:
				t.Fatalf("%s: file %q is not objectName %q", o.Field, o.File, o.Name)
			case o.SecretPath == "" || strings.ContainsRune(o.SecretPath, 0):
				t.Fatalf("%s planned with secretPath %q", o.Field, o.SecretPath)
			case o.SecretArgs != nil && o.Method == "GET":
				t.Fatalf("%s: secretArgs planned for a GET", o.Field)
			}
		}
		renderChecked(t, p, content)
	})
}

// planOrFieldError plans a class of ns/spc twice. A refusal must be an *Error for that
// class naming a parameters, objects or secretObjects field; an accepted plan must be
// the same both times, with every file valid, unique and given a permission-only mode.
func planOrFieldError(t *testing.T, provider string, params map[string]string) (*Plan, bool) {
	t.Helper()
	spc := class(provider, params)
	p, err := NewPlan(spc, Mount{Namespace: "ns", PodName: "pod", PodUID: "uid", ServiceAccount: "sa"})
	again, err2 := NewPlan(spc, Mount{Namespace: "ns", PodName: "pod", PodUID: "uid", ServiceAccount: "sa"})
	if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("planning twice disagrees: %v / %v", err, err2)
	}
	if err != nil {
		checkFieldError(t, err, "parameters.", "objects", "secretObjects")
		return nil, false
	}
	if !reflect.DeepEqual(plannedFiles(p), plannedFiles(again)) {
		t.Fatalf("planning twice gives different files")
	}
	seen := map[string]string{}
	for i, o := range p.Objects {
		if o.Field != fmt.Sprintf("objects[%d]", i) {
			t.Fatalf("object %d has field %q", i, o.Field)
		}
		for _, e := range o.Extractions {
			if !strings.HasPrefix(e.Field, o.Field+".jmesPath[") {
				t.Fatalf("extraction field %q is not under %s", e.Field, o.Field)
			}
		}
	}
	for _, f := range plannedFiles(p) {
		if f.Path == "" {
			continue // an AWS object written only through its extractions
		}
		if err := ValidateFileName(f.Path, true); err != nil {
			t.Fatalf("planned file %q is invalid: %v", f.Path, err)
		}
		if _, dup := seen[f.Path]; dup {
			t.Fatalf("file %q planned twice", f.Path)
		}
		seen[f.Path] = f.Path
		if f.Mode&^0o777 != 0 {
			t.Fatalf("file %q has mode %o", f.Path, f.Mode)
		}
	}
	return p, true
}

// checkFieldError asserts err is an *Error for ns/spc whose field starts with one of
// prefixes and whose message names it.
func checkFieldError(t *testing.T, err error, prefixes ...string) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error is %T, not *Error: %v", err, err)
	}
	if pe.Class.Namespace != "ns" || pe.Class.Name != "spc" || pe.Reason == "" {
		t.Fatalf("error without class or reason: %#v", pe)
	}
	named := false
	for _, p := range prefixes {
		named = named || strings.HasPrefix(pe.Field, p)
	}
	if !named || !strings.Contains(err.Error(), pe.Field) {
		t.Fatalf("error names field %q, want one under %v: %v", pe.Field, prefixes, err)
	}
	return pe
}

// renderChecked renders content as every object's document: it must not panic, must
// fail only with an *Error naming a jmesPath field, and on success write exactly the
// planned files in order.
func renderChecked(t *testing.T, p *Plan, content []byte) {
	t.Helper()
	contents := make([]ObjectContent, len(p.Objects))
	for i := range contents {
		contents[i] = ObjectContent{Bytes: content, Version: "1"}
	}
	files, err := p.Render(contents)
	if err != nil {
		pe := checkFieldError(t, err, "objects[")
		if !strings.Contains(pe.Field, ".jmesPath") {
			t.Fatalf("render error names %q, not a jmesPath field", pe.Field)
		}
		return
	}
	var want []string
	for _, f := range plannedFiles(p) {
		if f.Path != "" {
			want = append(want, f.Path)
		}
	}
	if len(files) != len(want) {
		t.Fatalf("rendered %d files, planned %d", len(files), len(want))
	}
	for i, f := range files {
		if f.Path != want[i] {
			t.Fatalf("file %d is %q, planned %q", i, f.Path, want[i])
		}
	}
}
