// Package providerclass turns a SecretProviderClass (secrets-store.csi.x-k8s.io/v1)
// and the context of one mount into a validated Plan: the objects to fetch, the file
// each lands in with its mode, the JMESPath extractions and the secretObjects to sync.
// It accepts the parameter dialects of the upstream AWS and Vault providers unchanged.
//
// The package is pure: it does no network or disk I/O, and it never sees a credential.
// Every rejection is an *Error that names the SecretProviderClass and the field path.
package providerclass
