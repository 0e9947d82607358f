// Package registration serves kubelet's plugin-registration API (pluginregistration/v1)
// for the CSI driver, so `secretmount driver` can register itself with kubelet without
// the csi-node-driver-registrar sidecar.
//
// It owns the registration socket in kubelet's plugins_registry folder: it replaces a
// stale one at start, removes it at stop (unless another process has replaced it), and
// re-creates it after a back-off when kubelet reports a failed registration, which makes
// kubelet try again, or when someone deleted it. It keeps the outcome
// kubelet reported, for readiness and for the secretmount_kubelet_registered gauge.
//
// It must not serve CSI itself, must only probe the CSI socket (the driver owns it), and
// must not stop the driver on a registration failure: volumes already published keep
// being served and rotated while kubelet retries.
package registration
