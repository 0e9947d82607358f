package sync

import (
	"strings"
	"testing"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
	"github.com/secretmount/secretmount/providerclass"
)

func TestSecretSyncContent(t *testing.T) {
	files := map[string][]byte{"db-username": []byte("postgres"), "db-password": []byte("s3cr3t\x00\xff")}
	ss := secretSync(func(ss *v1alpha1.SecretSync) {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data,
			v1alpha1.SecretObjectData{TargetKey: "pgpass", Template: `db:5432:*:{{ file "db-username" }}:x`})
	})
	c, err := secretSyncContent(ss, files)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"username": "postgres", "password": "s3cr3t\x00\xff", "pgpass": "db:5432:*:postgres:x"}
	if len(c.Data) != len(want) {
		t.Fatalf("keys %v, want %v", sortedKeys(c.Data), sortedKeys(want))
	}
	for k, v := range want {
		if string(c.Data[k]) != v {
			t.Errorf("data[%s] = %q, want %q", k, c.Data[k], v)
		}
	}
	if c.Type != "kubernetes.io/basic-auth" || c.Name != ss.Name || c.Namespace != ss.Namespace {
		t.Errorf("got %s %s/%s", c.Type, c.Namespace, c.Name)
	}
	if c.Labels["cnpg.io/reload"] != "true" || c.Labels[v1alpha1.SecretSyncLabel] != ss.Name {
		t.Errorf("labels %v", c.Labels)
	}
	if c.Owner == nil || c.Owner.UID != ss.UID || c.Owner.Kind != "SecretSync" {
		t.Errorf("owner %+v", c.Owner)
	}
	if _, ok := ss.Spec.SecretObject.Labels[v1alpha1.SecretSyncLabel]; ok {
		t.Error("the spec's labels were modified")
	}
	files["db-password"][0] = 'X'
	if c.Data["password"][0] != 's' {
		t.Error("content shares memory with the files")
	}
}

func TestSecretSyncContentRefusesPartial(t *testing.T) {
	files := map[string][]byte{"db-username": []byte("postgres"), "db-password": []byte("pw-value")}
	tests := []struct {
		name      string
		mutate    func(*v1alpha1.SecretSync)
		wantField string
	}{
		{name: "unknown source path", mutate: func(ss *v1alpha1.SecretSync) { ss.Spec.SecretObject.Data[1].SourcePath = "db-pass" },
			wantField: "spec.secretObject.data[1].sourcePath"},
		{name: "template names a missing file", mutate: func(ss *v1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data[0] = v1alpha1.SecretObjectData{TargetKey: "uri", Template: `{{ file "host" }}`}
		}, wantField: "spec.secretObject.data[0].template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := secretSyncContent(secretSync(tt.mutate), files)
			if err == nil || c != nil {
				t.Fatalf("got %v, %v; want no content and an error on %s", c, err, tt.wantField)
			}
			if err.Field != tt.wantField || err.Reason != v1alpha1.ReasonUserInputValidationFailed {
				t.Fatalf("error on %s (%s), want %s", err.Field, err.Reason, tt.wantField)
			}
			if strings.Contains(err.Error(), "pw-value") {
				t.Fatalf("error %q contains a value", err)
			}
			if !strings.Contains(err.Error(), "db-password, db-username") && tt.name == "unknown source path" {
				t.Fatalf("error %q does not list the available files", err)
			}
		})
	}
}

func TestMountContent(t *testing.T) {
	so := providerclass.SecretObject{
		Field: "secretObjects[0]", SecretName: "postgres-credentials",
		Labels: map[string]string{"cnpg.io/reload": "true"},
		Data:   []providerclass.SecretObjectData{{ObjectName: "db-username", Key: "username"}, {ObjectName: "db-password", Key: "password"}},
	}
	files := map[string][]byte{"db-username": []byte("postgres"), "db-password": []byte("pw\n")}
	c, err := mountContent("apps", so, files)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != "Opaque" || c.Namespace != "apps" || string(c.Data["password"]) != "pw\n" || c.Labels[mountManagedLabel] != "true" {
		t.Fatalf("got %+v", c)
	}
	so.Data[1].ObjectName = "gone"
	if _, err := mountContent("apps", so, files); err == nil || !strings.Contains(err.Error(), "secretObjects[0].data[1].objectName") {
		t.Fatalf("error %v does not name the field", err)
	}
}
