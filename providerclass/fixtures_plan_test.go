package providerclass

import (
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"reflect"
)

// comparable returns a copy of p without the compiled JMESPath expressions, so plans
// can be compared with reflect.DeepEqual.
func comparable(p *Plan) *Plan {
	if p == nil {
		return nil
	}
	c := *p
	c.Objects = make([]Object, len(p.Objects))
	for i, o := range p.Objects {
		o.Extractions = append([]Extraction(nil), o.Extractions...)
		for j := range o.Extractions {
			o.Extractions[j].compiled = nil
		}
		c.Objects[i] = o
	}
	return &c
}

func assertEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s differs\nwant: %+v\n got: %+v", what, want, got)
	}
}

func TestNewPlanAWSFixture(t *testing.T) {
	spc := fixture(t, "cnpg-aws-secretproviderclass.yaml")
	p, err := NewPlan(spc, Mount{Namespace: "cnpg-system", PodName: "pg-1"})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	want := &Plan{
		Class:      types.NamespacedName{Namespace: "cnpg-system", Name: "postgres-aws-secrets"},
		Provider:   "aws",
		Dialect:    DialectAWS,
		Parameters: spc.Spec.Parameters,
		AWS:        &AWSParameters{PathTranslation: "_", PreferredAddressType: "auto"},
		Objects: []Object{
			{
				Field: "objects[0]", Name: "prod/cnpg/postgres-credentials", Type: TypeSecretsManager,
				File: "prod_cnpg_postgres-credentials", Mode: 0o644,
				Extractions: []Extraction{
					{Field: "objects[0].jmesPath[0]", Path: "username", File: "db-username", Mode: 0o644},
					{Field: "objects[0].jmesPath[1]", Path: "password", File: "db-password", Mode: 0o644},
				},
			},
			{
				Field: "objects[1]", Name: "prod/cnpg/s3-credentials", Type: TypeSecretsManager,
				File: "prod_cnpg_s3-credentials", Mode: 0o644,
				Extractions: []Extraction{
					{Field: "objects[1].jmesPath[0]", Path: "accessKeyId", File: "s3-access-key", Mode: 0o644},
					{Field: "objects[1].jmesPath[1]", Path: "secretAccessKey", File: "s3-secret-key", Mode: 0o644},
				},
			},
		},
		SecretObjects: []SecretObject{
			{Field: "secretObjects[0]", SecretName: "postgres-credentials", Type: "Opaque", Data: []SecretObjectData{
				{ObjectName: "db-username", Key: "username"}, {ObjectName: "db-password", Key: "password"},
			}},
			{Field: "secretObjects[1]", SecretName: "s3-credentials", Type: "Opaque", Data: []SecretObjectData{
				{ObjectName: "s3-access-key", Key: "access-key"}, {ObjectName: "s3-secret-key", Key: "secret-key"},
			}},
		},
	}
	assertEqual(t, "plan", want, comparable(p))

	files, err := p.Render([]ObjectContent{
		{Bytes: []byte(`{"username":"app","password":"p@ss\"word\n"}`), Version: "v1"},
		{Bytes: []byte(`{"accessKeyId":"AKIA","secretAccessKey":"s3cr3t/+="}`), Version: "v2"},
	})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	wantFiles := []File{
		{Path: "prod_cnpg_postgres-credentials", Mode: 0o644, Bytes: []byte(`{"username":"app","password":"p@ss\"word\n"}`)},
		{Path: "db-username", Mode: 0o644, Bytes: []byte("app")},
		{Path: "db-password", Mode: 0o644, Bytes: []byte("p@ss\"word\n")},
		{Path: "prod_cnpg_s3-credentials", Mode: 0o644, Bytes: []byte(`{"accessKeyId":"AKIA","secretAccessKey":"s3cr3t/+="}`)},
		{Path: "s3-access-key", Mode: 0o644, Bytes: []byte("AKIA")},
		{Path: "s3-secret-key", Mode: 0o644, Bytes: []byte("s3cr3t/+=")},
	}
	assertEqual(t, "files", wantFiles, files)
}

func TestNewPlanVaultFixture(t *testing.T) {
	spc := fixture(t, "cnpg-vault-secretproviderclass.yaml")
	p, err := NewPlan(spc, Mount{Namespace: "cnpg-system", DefaultMode: 0o440})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	obj := func(i int, name, path, key string) Object {
		return Object{
			Field: "objects[" + string(rune('0'+i)) + "]", Name: name, Type: TypeVault,
			SecretPath: path, SecretKey: key, Method: "GET", Encoding: "utf-8",
			File: name, Mode: os.FileMode(0o440),
		}
	}
	want := &Plan{
		Class:      types.NamespacedName{Namespace: "cnpg-system", Name: "postgres-vault-secrets"},
		Provider:   "vault",
		Dialect:    DialectVault,
		Parameters: spc.Spec.Parameters,
		Vault: &VaultParameters{
			RoleName: "cnpg", Address: "http://vault.vault-system:8200",
			AuthMountPath: "kubernetes", Audience: "vault",
		},
		Objects: []Object{
			obj(0, "db-username", "cnpg/data/postgres-credentials", "username"),
			obj(1, "db-password", "cnpg/data/postgres-credentials", "password"),
			obj(2, "s3-access-key", "cnpg/data/s3-credentials", "access_key"),
			obj(3, "s3-secret-key", "cnpg/data/s3-credentials", "secret_key"),
		},
		SecretObjects: []SecretObject{
			{Field: "secretObjects[0]", SecretName: "postgres-credentials", Type: "Opaque", Data: []SecretObjectData{
				{ObjectName: "db-username", Key: "username"}, {ObjectName: "db-password", Key: "password"},
			}},
			{Field: "secretObjects[1]", SecretName: "s3-credentials", Type: "Opaque", Data: []SecretObjectData{
				{ObjectName: "s3-access-key", Key: "access_key"}, {ObjectName: "s3-secret-key", Key: "secret_key"},
			}},
		},
	}
	assertEqual(t, "plan", want, comparable(p))
	files, err := p.Render([]ObjectContent{
		{Bytes: []byte("app")}, {Bytes: []byte("pw")}, {Bytes: []byte("AKIA")}, {Bytes: []byte("sk")},
	})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path+"="+string(f.Bytes)+"@"+f.Mode.String())
	}
	wantFiles := []string{"db-username=app@-r--r-----", "db-password=pw@-r--r-----", "s3-access-key=AKIA@-r--r-----", "s3-secret-key=sk@-r--r-----"}
	assertEqual(t, "files", wantFiles, got)
}
