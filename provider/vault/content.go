package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// content makes an object from a read: the secretKey's value (decoded) or the whole
// data as JSON, the data as the extraction document, and a version.
func (s *session) content(obj *providerclass.Object, req *request, res *readResult, hmacKey []byte) (providerclass.ObjectContent, error) {
	// encoding/json sorts map keys, so the document is the same for the same data.
	doc, err := json.Marshal(res.data)
	if err != nil {
		return providerclass.ObjectContent{}, fmt.Errorf("vault: %s: the secret's data cannot be written as JSON: %w", s.objectRef(obj), provider.ErrInvalid)
	}
	value := doc
	if obj.SecretKey != "" {
		raw, ok := res.data[obj.SecretKey]
		if !ok {
			return providerclass.ObjectContent{}, fmt.Errorf("vault: %s: secretKey %q does not exist in the secret: %w", s.objectRef(obj), obj.SecretKey, provider.ErrNotFound)
		}
		if str, ok := raw.(string); ok {
			value = []byte(str)
		} else if value, err = json.Marshal(raw); err != nil {
			return providerclass.ObjectContent{}, fmt.Errorf("vault: %s: secretKey %q cannot be written as JSON: %w", s.objectRef(obj), obj.SecretKey, provider.ErrInvalid)
		}
		if value, err = decode(value, obj.Encoding); err != nil {
			return providerclass.ObjectContent{}, fmt.Errorf("vault: %s: secretKey %q: %v: %w", s.objectRef(obj), obj.SecretKey, err, provider.ErrInvalid)
		}
	}
	version := res.kv2Version
	if version == "" {
		version = digest(hmacKey, obj, req, value, doc)
	}
	return providerclass.ObjectContent{Bytes: value, Document: doc, Version: version}, nil
}

// decode turns a value written in encoding into its bytes. Its errors never quote the
// value (encoding/hex's would quote the offending byte).
func decode(value []byte, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "", "utf-8", "utf8":
		return value, nil
	case "base64":
		out, err := base64.StdEncoding.DecodeString(string(value))
		if err != nil {
			return nil, fmt.Errorf("value is not valid base64")
		}
		return out, nil
	case "hex":
		out, err := hex.DecodeString(string(value))
		if err != nil {
			return nil, fmt.Errorf("value is not valid hex")
		}
		return out, nil
	default:
		return nil, fmt.Errorf("encoding %q: want utf-8, base64 or hex", encoding)
	}
}

// digest is a version for content without Vault metadata: HMAC-SHA256 with the driver's
// key, so it is stable across restarts yet says nothing about the value. The object's
// description is mixed in, so two objects with equal values do not show it.
func digest(key []byte, obj *providerclass.Object, req *request, value, doc []byte) string {
	mac := hmac.New(sha256.New, key)
	for _, part := range [][]byte{[]byte(obj.Name), []byte(req.sharedKey), []byte(obj.SecretKey), []byte(obj.Encoding), value, doc} {
		var n [8]byte
		for i, l := 0, len(part); i < 8; i, l = i+1, l>>8 {
			n[i] = byte(l)
		}
		mac.Write(n[:])
		mac.Write(part)
	}
	return "hmac-sha256:" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
