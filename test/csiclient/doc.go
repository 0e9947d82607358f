// Package csiclient is a small kubelet stand-in for tests and demos: it dials a CSI
// socket and publishes or unpublishes a secrets volume with the volume context kubelet
// would send for an inline csi volume (pod info and ServiceAccount tokens).
//
// It is test tooling: it never talks to an API server and never mounts anything itself.
package csiclient
