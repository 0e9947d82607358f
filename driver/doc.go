// Package driver is the CSI Identity and Node service of secretmount: it answers
// kubelet's NodePublishVolume by planning the pod's SecretProviderClass, fetching through
// the provider registry with the pod's own identity, mounting a tmpfs at the target path
// and writing the files there atomically. It keeps the table of published volumes that
// rotation and the sync controller read, and it runs the rotation poller.
//
// It must not write to the API server (kubelet waits on the mount path), must not log,
// return or persist a secret value or a token, and must not use the node's credentials
// to fetch a pod's secrets. gRPC status codes are chosen here and nowhere below.
package driver
