// Package sanity runs csi-sanity (github.com/kubernetes-csi/csi-test/v5) against the real
// driver on a temporary socket, with real tmpfs mounts, a backend faked in test code and
// a controller stand-in that plays the part of the CO.
package sanity
