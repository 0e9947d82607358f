// Throwaway wrapper that builds the upstream Secrets Store CSI Driver for the interop
// tests. It is not part of the secretmount module; hack/setup/upstream-driver.sh copies
// it into the cache and builds there.
module secretmount.local/upstream-driver

go 1.24.7

require sigs.k8s.io/secrets-store-csi-driver v1.5.4

// monis.app/mlog is refused by the module proxy; ./mlog provides the functions the
// driver calls, backed by klog.
replace monis.app/mlog => ./mlog
