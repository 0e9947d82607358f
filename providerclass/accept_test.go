package providerclass

import (
	"os"
	"reflect"
	"testing"
)

// fileSummary is what a plan writes, without the fetch details.
type fileSummary struct {
	Path string
	Mode os.FileMode
}

func plannedFiles(p *Plan) []fileSummary {
	var out []fileSummary
	for _, o := range p.Objects {
		out = append(out, fileSummary{o.File, o.Mode})
		for _, e := range o.Extractions {
			out = append(out, fileSummary{e.File, e.Mode})
		}
	}
	return out
}

func TestNewPlanFileNamesAndModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plan  func() (*Plan, error)
		files []fileSummary
	}{
		{"aws default translation", func() (*Plan, error) {
			return NewPlan(aws("- {objectName: /app/db/pass, objectType: ssmparameter}"), Mount{})
		}, []fileSummary{{"_app_db_pass", 0o644}}},
		{"aws translation off strips leading slashes", func() (*Plan, error) {
			return NewPlan(aws("- {objectName: //app/db/pass, objectType: ssmparameter}", "pathTranslation", "False"), Mount{})
		}, []fileSummary{{"app/db/pass", 0o644}}},
		{"aws custom translation", func() (*Plan, error) {
			return NewPlan(aws("- {objectName: app/db, objectType: secretsmanager, objectAlias: x/y}", "pathTranslation", "-"), Mount{})
		}, []fileSummary{{"x-y", 0o644}}},
		{"aws alias translated in jmesPath", func() (*Plan, error) {
			return NewPlan(aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: db/user}]}"), Mount{})
		}, []fileSummary{{"a", 0o644}, {"db_user", 0o644}}},
		{"aws sm ARN", func() (*Plan, error) {
			return NewPlan(aws("- objectName: '"+smArn+"'", "region", "us-east-1"), Mount{})
		}, []fileSummary{{smArn, 0o644}}},
		{"modes: mount default, object, inherited, own", func() (*Plan, error) {
			return NewPlan(aws(`
- objectName: a
  objectType: secretsmanager
- objectName: b
  objectType: secretsmanager
  filePermission: "600"
  jmesPath:
    - {path: x, objectAlias: bx}
    - {path: y, objectAlias: by, filePermission: "0o400"}
`), Mount{DefaultMode: 0o440})
		}, []fileSummary{{"a", 0o440}, {"b", 0o600}, {"bx", 0o600}, {"by", 0o400}}},
		{"same objectName twice with aliases", func() (*Plan, error) {
			return NewPlan(aws("- {objectName: a, objectType: secretsmanager, objectAlias: cur}\n- {objectName: a, objectType: secretsmanager, objectAlias: prev, objectVersionLabel: AWSPREVIOUS}"), Mount{})
		}, []fileSummary{{"cur", 0o644}, {"prev", 0o644}}},
		{"vault nested names and YAML int mode", func() (*Plan, error) {
			return NewPlan(vault("- {objectName: tls/cert.pem, secretPath: pki/issue/web, method: post, filePermission: 0600}"), Mount{})
		}, []fileSummary{{"tls/cert.pem", 0o600}}},
		{"vault jmesPath", func() (*Plan, error) {
			return NewPlan(vault("- {objectName: all.json, secretPath: kv/a, jmesPath: [{path: db.user, objectAlias: db/user}]}"), Mount{DefaultMode: 0o400})
		}, []fileSummary{{"all.json", 0o400}, {"db/user", 0o400}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.plan()
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			assertEqual(t, "files", tc.files, plannedFiles(p))
		})
	}
}

func TestNewPlanAWSDetails(t *testing.T) {
	const ssmArn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db"
	spc := aws(`
- objectName: "`+ssmArn+`"
  objectVersion: 3
- &base
  objectName: db
  objectType: secretsmanager
  objectAlias: db
  objectVersionLabel: AWSCURRENT
  failoverObject:
    objectName: db-replica
    objectVersionLabel: AWSCURRENT
`, "region", "us-east-1", "failoverRegion", "us-west-2", "usePodIdentity", "True", "preferredAddressType", "IPv6", "pathTranslation", "false")
	p, err := NewPlan(spc, Mount{})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	assertEqual(t, "aws parameters", &AWSParameters{
		Region: "us-east-1", FailoverRegion: "us-west-2", PathTranslation: "", UsePodIdentity: true, PreferredAddressType: "ipv6",
	}, p.AWS)
	if p.Vault != nil {
		t.Errorf("Vault parameters set on an AWS plan")
	}
	o := p.Objects[0]
	if o.Type != TypeSSMParameter || o.Version != "3" || o.File != "arn:aws:ssm:us-east-1:123456789012:parameter/app/db" {
		t.Errorf("ssm ARN object = %+v", o)
	}
	o = p.Objects[1]
	want := &FailoverObject{Name: "db-replica", VersionLabel: "AWSCURRENT"}
	if o.Type != TypeSecretsManager || o.VersionLabel != "AWSCURRENT" || !reflect.DeepEqual(o.Failover, want) {
		t.Errorf("failover object = %+v (failover %+v)", o, o.Failover)
	}
}

func TestNewPlanVaultDetails(t *testing.T) {
	spc := vault(`
- objectName: cert
  secretPath: /v1/pki/issue/web
  method: put
  encoding: BASE64
  secretArgs:
    common_name: web.example
    alt_names: [a, b]
    ttl: 3600
- objectName: old
  secretPath: kv/data/app?version=3
  secretKey: password
  encoding: hex
`, "vaultAddress", "https://vault:8200", "vaultNamespace", "team", "vaultKubernetesMountPath", "k8s-east",
		"audience", "vault-east", "vaultCACertPath", "/ca.pem", "vaultTLSServerName", "vault", "vaultSkipTLSVerify", "false",
		"vaultTLSClientCertPath", "/c.pem", "vaultTLSClientKeyPath", "/k.pem", "vaultCADirectory", "/cas")
	p, err := NewPlan(spc, Mount{})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	assertEqual(t, "vault parameters", &VaultParameters{
		RoleName: "r", Address: "https://vault:8200", Namespace: "team", AuthMountPath: "k8s-east", Audience: "vault-east",
		CACertPath: "/ca.pem", CADirectory: "/cas", TLSServerName: "vault", TLSClientCertPath: "/c.pem", TLSClientKeyPath: "/k.pem",
	}, p.Vault)
	c := p.Objects[0]
	if c.Method != "PUT" || c.Encoding != "base64" || c.SecretPath != "/v1/pki/issue/web" {
		t.Errorf("cert object = %+v", c)
	}
	assertEqual(t, "secretArgs", map[string]any{"common_name": "web.example", "alt_names": []any{"a", "b"}, "ttl": 3600}, c.SecretArgs)
	o := p.Objects[1]
	if o.Method != "GET" || o.Encoding != "hex" || o.SecretPath != "kv/data/app?version=3" || o.SecretKey != "password" || o.SecretArgs != nil {
		t.Errorf("versioned object = %+v", o)
	}
}

func TestNewPlanExternalPassesParametersThrough(t *testing.T) {
	spc := class("gcp", map[string]string{"secrets": "- resourceName: x\n  path: ../weird"}, syncTo("s", "any-file", "k"))
	p, err := NewPlan(spc, Mount{})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	if p.Dialect != DialectExternal || len(p.Objects) != 0 || p.AWS != nil || p.Vault != nil {
		t.Fatalf("external plan = %+v", p)
	}
	assertEqual(t, "parameters", spc.Spec.Parameters, p.Parameters)
	assertEqual(t, "secretObjects", []SecretObject{{Field: "secretObjects[0]", SecretName: "s", Type: "Opaque",
		Data: []SecretObjectData{{ObjectName: "any-file", Key: "k"}}}}, p.SecretObjects)
}

func TestNewPlanSharesNothingWithTheClass(t *testing.T) {
	so := syncTo("s", "a", "k")
	so.Labels = map[string]string{"app": "x"}
	spc := class("aws", params("- {objectName: a, objectType: ssmparameter}"), so)
	p, err := NewPlan(spc, Mount{})
	if err != nil {
		t.Fatal(err)
	}
	spc.Spec.Parameters["objects"] = "changed"
	so.Labels["app"] = "changed"
	if p.Parameters["objects"] == "changed" || p.SecretObjects[0].Labels["app"] == "changed" {
		t.Fatal("plan changed when the class did")
	}
}

func TestNewPlanHonoursYAMLMergeKeys(t *testing.T) {
	p, err := NewPlan(vault(`
- &pg {objectName: db-username, secretPath: cnpg/data/postgres-credentials, secretKey: username, encoding: UTF8}
- <<: *pg
  objectName: db-password
  secretKey: password
- <<: [{secretPath: ignored, method: post}, *pg]
  objectName: root
  secretArgs: {ttl: 1h}
`), Mount{})
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	var got []string
	for _, o := range p.Objects {
		got = append(got, o.Name+" "+o.SecretPath+" "+o.SecretKey+" "+o.Method+" "+o.Encoding)
	}
	assertEqual(t, "objects", []string{
		"db-username cnpg/data/postgres-credentials username GET utf-8",
		"db-password cnpg/data/postgres-credentials password GET utf-8",
		"root ignored username POST utf-8",
	}, got)
}
