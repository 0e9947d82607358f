package providerclass

import (
	"strings"
	"testing"

	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
)

const smArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"

func TestNewPlanRejects(t *testing.T) {
	long := strings.Repeat("a", MaxFileNameComponent+1)
	for _, tc := range []struct {
		name   string
		spc    *secretsstorev1.SecretProviderClass
		field  string
		reason string
	}{
		// Provider and shared checks.
		{"no provider", class("", nil), "spec.provider", "is required"},
		{"provider with slash", class("../evil", nil), "spec.provider", "separator"},
		{"provider with NUL", class("a\x00b", nil), "spec.provider", "NUL"},

		// AWS mount-wide parameters.
		{"aws no objects", aws(""), "parameters.objects", "is required"},
		{"aws empty list", aws("[]"), "parameters.objects", "is required"},
		{"aws bad yaml", aws("- objectName: [unclosed"), "parameters.objects", "not valid YAML"},
		{"aws objects not a list", aws("objectName: x"), "parameters.objects", "must be a YAML list"},
		{"aws pathTranslation two chars", aws("- {objectName: a, objectType: ssmparameter}", "pathTranslation", "--"), "parameters.pathTranslation", "single character"},
		{"aws usePodIdentity", aws("- {objectName: a, objectType: ssmparameter}", "usePodIdentity", "yes please"), "parameters.usePodIdentity", "true"},
		{"aws preferredAddressType", aws("- {objectName: a, objectType: ssmparameter}", "preferredAddressType", "ipv5"), "parameters.preferredAddressType", "ipv4"},
		{"aws failover same region", aws("- {objectName: a, objectType: ssmparameter}", "region", "eu-west-1", "failoverRegion", "eu-west-1"), "parameters.failoverRegion", "differ"},

		// AWS objects.
		{"aws object not mapping", aws("- just-a-name"), "objects[0]", "must be a mapping"},
		{"aws missing objectName", aws("- objectType: secretsmanager"), "objects[0].objectName", "is required"},
		{"aws null objectName", aws("- {objectName: null, objectType: secretsmanager}"), "objects[0].objectName", "is required"},
		{"aws objectName is a list", aws("- {objectName: [a], objectType: secretsmanager}"), "objects[0].objectName", "must be a string"},
		{"aws duplicate key", aws("- objectName: a\n  objectName: b\n  objectType: ssmparameter"), "objects[0].objectName", "more than once"},
		{"aws missing objectType", aws("- objectName: plain"), "objects[0].objectType", "unless objectName is a full ARN"},
		{"aws unknown objectType", aws("- {objectName: a, objectType: vault}"), "objects[0].objectType", "unknown objectType"},
		{"aws ssm is not an objectType", aws("- {objectName: a, objectType: ssm}"), "objects[0].objectType", "unknown objectType"},
		{"aws bad ARN", aws("- objectName: 'arn:aws:secretsmanager'"), "objects[0].objectName", "not a valid ARN"},
		{"aws ARN of other service", aws("- objectName: 'arn:aws:s3:us-east-1:123456789012:bucket/x'"), "objects[0].objectName", "neither secretsmanager nor ssm"},
		{"aws objectType ARN mismatch", aws("- {objectName: '" + smArn + "', objectType: ssmparameter}"), "objects[0].objectType", "does not match the ARN"},
		{"aws ARN region mismatch", aws("- objectName: '"+smArn+"'", "region", "eu-west-1"), "objects[0].objectName", "ARN region"},
		{"aws ssm version and label", aws("- {objectName: p, objectType: ssmparameter, objectVersion: '1', objectVersionLabel: l}"), "objects[0].objectVersionLabel", "objectVersion"},
		{"aws bad mode", aws("- {objectName: a, objectType: secretsmanager, filePermission: '0800'}"), "objects[0].filePermission", "octal"},
		{"aws mode too wide", aws("- {objectName: a, objectType: secretsmanager, filePermission: '4755'}"), "objects[0].filePermission", "permission bits"},
		{"aws mode text", aws("- {objectName: a, objectType: secretsmanager, filePermission: rw}"), "objects[0].filePermission", "octal"},
		{"aws dotdot without translation", aws("- {objectName: a/../../etc, objectType: secretsmanager}", "pathTranslation", "False"), "objects[0].objectName", "'..'"},
		{"aws dotdot alias", aws("- {objectName: a, objectType: secretsmanager, objectAlias: ..}"), "objects[0].objectAlias", "'..'"},
		{"aws reserved ..data", aws("- {objectName: a, objectType: secretsmanager, objectAlias: ..data}"), "objects[0].objectAlias", "reserved"},
		{"aws NUL in name", aws("- {objectName: \"a\\0b\", objectType: secretsmanager}"), "objects[0].objectName", "NUL"},
		{"aws over-long name", aws("- {objectName: " + long + ", objectType: secretsmanager}"), "objects[0].objectName", "longer than"},
		{"aws absolute via translation char", aws("- {objectName: /etc/x, objectType: secretsmanager}", "pathTranslation", "/"), "objects[0].objectName", "relative"},
		{"aws empty component", aws("- {objectName: a//b, objectType: secretsmanager}", "pathTranslation", "false"), "objects[0].objectName", "empty path component"},
		{"aws duplicate file", aws("- {objectName: a/b, objectType: secretsmanager}\n- {objectName: a_b, objectType: ssmparameter}"), "objects[1].objectName", "already used by objects[0].objectName"},
		{"aws duplicate alias vs name", aws("- {objectName: x, objectType: secretsmanager, objectAlias: y}\n- {objectName: y, objectType: secretsmanager}"), "objects[1].objectName", "already used"},
		{"aws jmesPath not a list", aws("- {objectName: a, objectType: secretsmanager, jmesPath: username}"), "objects[0].jmesPath", "must be a list"},
		{"aws jmesPath entry not mapping", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [username]}"), "objects[0].jmesPath[0]", "must be a mapping"},
		{"aws jmesPath missing path", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{objectAlias: u}]}"), "objects[0].jmesPath[0].path", "is required"},
		{"aws jmesPath bad expression", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: 'a[', objectAlias: u}]}"), "objects[0].jmesPath[0].path", "not a valid JMESPath"},
		{"aws jmesPath missing alias", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u}]}"), "objects[0].jmesPath[0].objectAlias", "is required"},
		{"aws jmesPath alias clash with object", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: a}]}"), "objects[0].jmesPath[0].objectAlias", "already used by objects[0].objectName"},
		{"aws jmesPath alias clash across objects", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: u}]}\n- {objectName: b, objectType: secretsmanager, jmesPath: [{path: p, objectAlias: p}, {path: u, objectAlias: u}]}"), "objects[1].jmesPath[1].objectAlias", "already used by objects[0].jmesPath[0].objectAlias"},
		{"aws jmesPath alias escapes", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: ../u}]}", "pathTranslation", "False"), "objects[0].jmesPath[0].objectAlias", "'..'"},
		{"aws jmesPath bad mode", aws("- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: u, filePermission: '9'}]}"), "objects[0].jmesPath[0].filePermission", "octal"},
		{"aws failover without region", aws("- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: {objectName: b}}"), "objects[0].failoverObject", "failoverRegion"},
		{"aws failover without alias", aws("- {objectName: a, objectType: secretsmanager, failoverObject: {objectName: b}}", "failoverRegion", "us-west-2"), "objects[0].objectAlias", "failoverObject"},
		{"aws failover missing name", aws("- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: {objectVersionLabel: x}}", "failoverRegion", "us-west-2"), "objects[0].failoverObject.objectName", "is required"},
		{"aws failover not mapping", aws("- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: b}", "failoverRegion", "us-west-2"), "objects[0].failoverObject", "must be a mapping"},
		{"aws failover ARN region", aws("- {objectName: a, objectAlias: a, objectType: secretsmanager, failoverObject: {objectName: '"+smArn+"'}}", "failoverRegion", "us-west-2"), "objects[0].failoverObject.objectName", "failoverRegion"},
		{"aws failover ARN type", aws("- {objectName: a, objectAlias: a, objectType: ssmparameter, failoverObject: {objectName: '"+smArn+"'}}", "failoverRegion", "us-east-1"), "objects[0].failoverObject.objectName", "does not match"},
		{"aws failover version mismatch", aws("- {objectName: a, objectAlias: a, objectType: secretsmanager, objectVersion: v1, failoverObject: {objectName: b, objectVersion: v2}}", "failoverRegion", "us-west-2"), "objects[0].failoverObject.objectVersion", "must match"},

		// Vault mount-wide parameters.
		{"vault no role", vault("- {objectName: a, secretPath: kv/a}", "roleName", "<unset>"), "parameters.roleName", "is required"},
		{"vault no objects", vault(""), "parameters.objects", "is required"},
		{"vault bad yaml", vault("- {objectName: a, secretPath"), "parameters.objects", "not valid YAML"},
		{"vault objects a mapping", vault("array: []"), "parameters.objects", "must be a YAML list"},
		{"vault bad address", vault("- {objectName: a, secretPath: kv/a}", "vaultAddress", "vault:8200"), "parameters.vaultAddress", "URL"},
		{"vault address without host", vault("- {objectName: a, secretPath: kv/a}", "vaultAddress", "https://"), "parameters.vaultAddress", "URL"},
		{"vault skip tls", vault("- {objectName: a, secretPath: kv/a}", "vaultSkipTLSVerify", "maybe"), "parameters.vaultSkipTLSVerify", "true"},
		{"vault conflicting auth mounts", vault("- {objectName: a, secretPath: kv/a}", "vaultAuthMountPath", "k8s", "vaultKubernetesMountPath", "kubernetes"), "parameters.vaultAuthMountPath", "differs"},
		{"vault client cert without key", vault("- {objectName: a, secretPath: kv/a}", "vaultTLSClientCertPath", "/c.pem"), "parameters.vaultTLSClientKeyPath", "is required"},
		{"vault client key without cert", vault("- {objectName: a, secretPath: kv/a}", "vaultTLSClientKeyPath", "/k.pem"), "parameters.vaultTLSClientCertPath", "is required"},

		// Vault objects.
		{"vault object not mapping", vault("- a"), "objects[0]", "must be a mapping"},
		{"vault missing objectName", vault("- {secretPath: kv/a}"), "objects[0].objectName", "is required"},
		{"vault missing secretPath", vault("- {objectName: a}"), "objects[0].secretPath", "is required"},
		{"vault secretPath dotdot", vault("- {objectName: a, secretPath: kv/../sys/raw}"), "objects[0].secretPath", "'..'"},
		{"vault secretPath empty segment", vault("- {objectName: a, secretPath: kv//a}"), "objects[0].secretPath", "empty"},
		{"vault secretPath bad version", vault("- {objectName: a, secretPath: 'kv/a?version=latest'}"), "objects[0].secretPath", "non-negative integer"},
		{"vault secretPath unknown query", vault("- {objectName: a, secretPath: 'kv/a?ttl=1h'}"), "objects[0].secretPath", "unknown query"},
		{"vault secretPath two versions", vault("- {objectName: a, secretPath: 'kv/a?version=1&version=2'}"), "objects[0].secretPath", "more than once"},
		{"vault secretPath bad query", vault("- {objectName: a, secretPath: 'kv/a?version=%zz'}"), "objects[0].secretPath", "malformed"},
		{"vault secretKey mapping", vault("- {objectName: a, secretPath: kv/a, secretKey: {x: 1}}"), "objects[0].secretKey", "must be a string"},
		{"vault unknown method", vault("- {objectName: a, secretPath: kv/a, method: DELETE}"), "objects[0].method", "unknown method"},
		{"vault unknown encoding", vault("- {objectName: a, secretPath: kv/a, encoding: base32}"), "objects[0].encoding", "unknown encoding"},
		{"vault secretArgs list", vault("- {objectName: a, secretPath: pki/issue/x, method: POST, secretArgs: [a, b]}"), "objects[0].secretArgs", "must be a mapping"},
		{"vault secretArgs scalar", vault("- {objectName: a, secretPath: pki/issue/x, method: POST, secretArgs: cn}"), "objects[0].secretArgs", "must be a mapping"},
		{"vault secretArgs nested non-string key", vault("- {objectName: a, secretPath: pki/issue/x, method: POST, secretArgs: {alt: {1: x}}}"), "objects[0].secretArgs", "JSON"},
		{"vault secretArgs NaN", vault("- {objectName: a, secretPath: pki/issue/x, method: POST, secretArgs: {ttl: .nan}}"), "objects[0].secretArgs", "JSON"},
		{"vault bad mode", vault("- {objectName: a, secretPath: kv/a, filePermission: 0o1777}"), "objects[0].filePermission", "permission bits"},
		{"vault decimal mode", vault("- {objectName: a, secretPath: kv/a, filePermission: 384}"), "objects[0].filePermission", "octal"},
		{"vault absolute name", vault("- {objectName: /etc/passwd, secretPath: kv/a}"), "objects[0].objectName", "relative"},
		{"vault escaping name", vault("- {objectName: x/../../y, secretPath: kv/a}"), "objects[0].objectName", "'..'"},
		{"vault dot component", vault("- {objectName: ./x, secretPath: kv/a}"), "objects[0].objectName", "'.'"},
		{"vault trailing slash", vault("- {objectName: x/, secretPath: kv/a}"), "objects[0].objectName", "empty path component"},
		{"vault duplicate objectName", vault("- {objectName: a, secretPath: kv/a}\n- {objectName: a, secretPath: kv/b}"), "objects[1].objectName", "already used by objects[0].objectName"},
		{"vault jmesPath missing alias", vault("- {objectName: a, secretPath: kv/a, jmesPath: [{path: x.y}]}"), "objects[0].jmesPath[0].objectAlias", "is required"},
		{"vault jmesPath bad expr", vault("- {objectName: a, secretPath: kv/a, jmesPath: [{path: 'x.[', objectAlias: y}]}"), "objects[0].jmesPath[0].path", "JMESPath"},
		{"vault jmesPath alias clash", vault("- {objectName: a, secretPath: kv/a}\n- {objectName: b, secretPath: kv/b, jmesPath: [{path: x, objectAlias: a}]}"), "objects[1].jmesPath[0].objectAlias", "already used by objects[0].objectName"},
		{"vault jmesPath path mapping", vault("- {objectName: a, secretPath: kv/a, jmesPath: [{path: {x: y}, objectAlias: z}]}"), "objects[0].jmesPath[0].path", "must be a string"},
		{"vault jmesPath not a list", vault("- {objectName: a, secretPath: kv/a, jmesPath: {path: x}}"), "objects[0].jmesPath", "must be a list"},
		{"vault jmesPath bad mode", vault("- {objectName: a, secretPath: kv/a, jmesPath: [{path: x, objectAlias: y, filePermission: '07777'}]}"), "objects[0].jmesPath[0].filePermission", "permission bits"},
		{"vault jmesPath alias escapes", vault("- {objectName: a, secretPath: kv/a, jmesPath: [{path: x, objectAlias: /abs}]}"), "objects[0].jmesPath[0].objectAlias", "relative"},
		{"vault null object", vault("- null"), "objects[0]", "must be a mapping"},
		{"vault reserved ..data", vault("- {objectName: ..data, secretPath: kv/a}"), "objects[0].objectName", "reserved"},
		{"vault over-long path", vault("- {objectName: '" + strings.Repeat("abcdefgh/", 120) + "x', secretPath: kv/a}"), "objects[0].objectName", "at most"},
		{"vault objectName is a mapping", vault("- {objectName: {a: b}, secretPath: kv/a}"), "objects[0].objectName", "must be a string"},
		{"vault secretArgs with GET", vault("- {objectName: a, secretPath: pki/issue/x, secretArgs: {common_name: x}}"), "objects[0].secretArgs", "POST or PUT"},
		{"vault merge of a scalar", vault("- {<<: x, objectName: a, secretPath: kv/a}"), "objects[0].<<", "must merge a mapping"},
		{"vault second object bad", vault("- {objectName: a, secretPath: kv/a}\n- {objectName: b, secretPath: kv/b, encoding: rot13}"), "objects[1].encoding", "unknown encoding"},

		// secretObjects, any dialect.
		{"secretObject null", class("aws", params("- {objectName: a, objectType: ssmparameter}"), nil), "secretObjects[0]", "null"},
		{"secretObject no name", class("aws", params("- {objectName: a, objectType: ssmparameter}"), syncTo("", "a", "k")), "secretObjects[0].secretName", "is required"},
		{"secretObject bad name", class("aws", params("- {objectName: a, objectType: ssmparameter}"), syncTo("Bad_Name", "a", "k")), "secretObjects[0].secretName", "not a valid Secret name"},
		{"secretObject duplicate name", class("aws", params("- {objectName: a, objectType: ssmparameter}"), syncTo("s", "a", "k"), syncTo("s", "a", "k")), "secretObjects[1].secretName", "already synced by secretObjects[0]"},
		{"secretObject no data", class("aws", params("- {objectName: a, objectType: ssmparameter}"), syncTo("s")), "secretObjects[0].data", "is required"},
		{"secretObject unknown file", class("aws", params("- {objectName: a/b, objectType: ssmparameter}"), syncTo("s", "a/b", "k")), "secretObjects[0].data[0].objectName", "not a file of this class (files: a_b)"},
		{"secretObject vault unknown file", class("vault", params("- {objectName: a, secretPath: kv/a}", "roleName", "r"), syncTo("s", "a", "k", "b", "k2")), "secretObjects[0].data[1].objectName", "not a file"},
		{"secretObject empty objectName", class("vault", params("- {objectName: a, secretPath: kv/a}", "roleName", "r"), syncTo("s", "", "k")), "secretObjects[0].data[0].objectName", "is required"},
		{"secretObject empty key", class("aws", params("- {objectName: a, objectType: ssmparameter}"), syncTo("s", "a", "")), "secretObjects[0].data[0].key", "is required"},
		{"secretObject bad key", class("aws", params("- {objectName: a, objectType: ssmparameter}"), syncTo("s", "a", "no/slash")), "secretObjects[0].data[0].key", "not a valid Secret key"},
		{"secretObject duplicate key", class("aws", params("- {objectName: a, objectType: ssmparameter}\n- {objectName: b, objectType: ssmparameter}"), syncTo("s", "a", "k", "b", "k")), "secretObjects[0].data[1].key", "already set by secretObjects[0].data[0]"},
		{"secretObject external bad name", class("azure", nil, syncTo("-x", "f", "k")), "secretObjects[0].secretName", "not a valid Secret name"},
		{"secretObject external bad key", class("gcp", nil, syncTo("s", "f", "")), "secretObjects[0].data[0].key", "is required"},
		{"secretObject bad label key", class("gcp", nil, &secretsstorev1.SecretObject{SecretName: "s", Labels: map[string]string{"a b": "c"}, Data: []*secretsstorev1.SecretObjectData{{ObjectName: "f", Key: "k"}}}), "secretObjects[0].labels", "not a valid label key"},
		{"secretObject bad label value", class("gcp", nil, &secretsstorev1.SecretObject{SecretName: "s", Labels: map[string]string{"app": "a b"}, Data: []*secretsstorev1.SecretObjectData{{ObjectName: "f", Key: "k"}}}), "secretObjects[0].labels.app", "not a valid label value"},
		{"secretObject bad annotation", class("gcp", nil, &secretsstorev1.SecretObject{SecretName: "s", Annotations: map[string]string{"/x": "y"}, Data: []*secretsstorev1.SecretObjectData{{ObjectName: "f", Key: "k"}}}), "secretObjects[0].annotations", "not a valid annotation key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.spc, Mount{Namespace: "ns"})
			if p != nil {
				t.Errorf("got a plan along with the error")
			}
			requireFieldError(t, err, tc.field, tc.reason)
		})
	}
}

func TestNewPlanNilClass(t *testing.T) {
	if _, err := NewPlan(nil, Mount{}); err == nil {
		t.Fatal("no error for a nil class")
	}
}
