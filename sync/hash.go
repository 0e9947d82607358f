package sync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
)

// hashInputs are what a SecretSync's syncHash covers besides the Secret itself.
type hashInputs struct {
	SyncUID              types.UID
	SyncGeneration       int64
	ForceSynchronization string
	ClassUID             types.UID
	ClassGeneration      int64
}

// syncHash is an HMAC-SHA256 keyed by the SecretSync's UID, so that the hash of a
// low-entropy password cannot be looked up or compared across objects. Every field is
// length-prefixed, so no two different inputs share an encoding.
func syncHash(in hashInputs, c *secretContent) string {
	m := hmac.New(sha256.New, []byte(in.SyncUID))
	put := func(s string) { writeField(m, []byte(s)) }
	put(string(in.ClassUID))
	put(strconv.FormatInt(in.ClassGeneration, 10))
	put(strconv.FormatInt(in.SyncGeneration, 10))
	put(in.ForceSynchronization)
	put(c.Type)
	for _, section := range []map[string]string{c.Labels, c.Annotations} {
		put(strconv.Itoa(len(section)))
		for _, k := range sortedKeys(section) {
			put(k)
			put(section[k])
		}
	}
	put(strconv.Itoa(len(c.Data)))
	for _, k := range sortedKeys(c.Data) {
		put(k)
		writeField(m, c.Data[k])
	}
	return hex.EncodeToString(m.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
