// Package integration runs the built-in backends and the secretmount commands against
// real components: the driver and `secretmount sync` on a real kube-apiserver and etcd,
// the AWS backend against moto (Secrets Manager, SSM Parameter Store, STS with web
// identity), and the Vault backend against a real Vault server (KV v1 and v2,
// Kubernetes auth with a real TokenReview, database leases on a real PostgreSQL).
//
// The tests need the integration build tag and the components of test/harness. The
// package holds tests only; nothing imports it.
package integration
