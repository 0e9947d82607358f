// Package vault is the Vault backend: it fetches the objects of a SecretProviderClass
// written in the Vault CSI provider's dialect from Vault (or OpenBao, which answers the
// same HTTP API) with github.com/hashicorp/vault/api.
//
// It owns Kubernetes auth with the pod's ServiceAccount token and the cache of the Vault
// tokens that login returns, KV v1/v2 reads (KV v2 mounts are detected, so a path may be
// written with or without its "data/" segment), dynamic engines (method and secretArgs)
// whose leases are renewed and reused across rotation polls instead of minted anew, value
// decoding (encoding) and object versions that are stable across restarts.
//
// Without secretKey an object is the secret's data as JSON (for KV v2 the inner data,
// without metadata; keys sorted). The Vault CSI provider writes its whole response there
// instead, request_id included, which changes on every read; ours changes only when the
// data does. With secretKey it is that top-level value (a string as is, anything else as
// JSON). In both cases the object's JSON document for jmesPath extractions is the
// secret's data, so nested keys are reached through extractions.
//
// Dynamic secrets are kept per identity, path, method and arguments: reused as they are
// until the renew fraction of their lease, then renewed; new ones are minted only when
// renewal is refused or would end too soon (max TTL). Issued certificates, which come
// without a lease, are reused the same way until the renew fraction of their validity.
//
// It must not: share a Vault token, a lease or a fetched value between two ServiceAccount
// identities; log, return or version-stamp a secret value (versions are KV v2 metadata or
// a keyed HMAC); read Vault settings from the process environment (VAULT_TOKEN and
// friends are ignored, so a pod is only ever served with its own login).
package vault
