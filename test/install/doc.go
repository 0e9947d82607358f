// Package install renders the secretmount Helm chart (charts/secretmount) with the Helm
// Go SDK, exactly as `helm template` and `helm install` would, and checks what comes
// out: lint, the values schema, the flags each container is started with, and — in the
// integration tests — that a real kube-apiserver accepts every object and that the
// chart's RBAC allows what the code does and denies the rest.
//
// It also produces the plain manifests in deploy/ (see the manifests command and
// hack/manifests.sh), so the chart stays their one source.
//
// It must not download a helm binary or reach a cluster outside the integration tests.
package install
