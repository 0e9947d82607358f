// Command demo is what `make demo` runs: the whole product on loopback, with real
// components and no cloud account. It starts etcd with kube-apiserver, moto (AWS Secrets
// Manager and STS), an OpenBao server (the Vault API) and PostgreSQL through test/harness;
// runs `secretmount driver` and `secretmount sync` as processes; applies the CloudNativePG
// guide's SecretProviderClass and its Vault twin as they are; publishes a volume the way
// kubelet does (test/csiclient); shows the files (values masked), the synced Secrets (keys
// and sizes) and a PostgreSQL login with the synced superuser credentials; rotates the
// secrets in both backends and shows files and Secrets follow; and stops everything it
// started.
//
// The Vault class names the server by its cluster DNS name (vault.vault-system:8200). On
// a laptop there is no cluster DNS, so the demo runs a loopback HTTP proxy that answers
// for that one name and hands it to the secretmount processes as HTTP_PROXY; loopback
// traffic (API server, moto) never goes through it.
//
// It is a demonstration and test tool: it never prints a secret value, never listens
// beyond 127.0.0.1, and stops only the processes it started.
package main
