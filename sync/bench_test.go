package sync

import (
	"testing"

	v1alpha1 "github.com/secretmount/secretmount/apis/secretsync/v1alpha1"
)

// BenchmarkSecretSyncContent measures building and hashing one templated Secret, the
// per-SecretSync work of a rotation tick besides the (shared) fetch.
func BenchmarkSecretSyncContent(b *testing.B) {
	files := map[string][]byte{"db-username": []byte("postgres"), "db-password": []byte("s3cr3t:pw")}
	ss := secretSync(func(ss *v1alpha1.SecretSync) {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, v1alpha1.SecretObjectData{
			TargetKey: "uri", Template: `postgresql://{{ file "db-username" | pathEscape }}:{{ file "db-password" | pathEscape }}@db:5432/app`})
	})
	in := hashInputs{SyncUID: ss.UID, SyncGeneration: 1, ClassUID: "spc", ClassGeneration: 1}
	b.ReportAllocs()
	for b.Loop() {
		c, err := secretSyncContent(ss, files)
		if err != nil {
			b.Fatal(err)
		}
		_ = syncHash(in, c)
	}
}
