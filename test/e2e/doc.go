// Package e2e runs secretmount on a real node: kubelet and containerd next to the test
// harness's API server, the driver and the sync controller as host processes, and pods
// whose inline CSI volumes kubelet itself publishes. The test container reports what it
// sees in its log; the tests read that log file where kubelet keeps it.
//
// Everything it starts lives under a temp folder and on loopback (the node's address is a
// documentation-range address added for the test and removed after it), and is stopped by
// PID; pods are deleted first so kubelet unpublishes their volumes, and whatever is still
// mounted under the node's folders is unmounted at the end.
//
// It owns only test code and the two test images (images/pause, images/reader). It must
// not touch the host's own containerd or kubelet state, and nothing in production code may
// import it.
package e2e
