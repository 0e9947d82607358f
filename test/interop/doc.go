// Package interop proves that secretmount speaks the provider gRPC API of the Secrets
// Store CSI Driver both ways: the upstream driver (v1.5.4, built from the module proxy by
// hack/setup/upstream-driver.sh) mounting through `secretmount provider`, and our driver
// mounting through an external provider on a socket.
//
// The tests need the integration build tag, a real kube-apiserver from test/harness and
// root (tmpfs mounts). The package holds tests only; nothing imports it.
package interop
