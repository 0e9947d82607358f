// Package bench measures secretmount side by side with the upstream Secrets Store CSI
// Driver (v1.5.4, built by hack/setup/upstream-driver.sh) on the same backends: mount
// latency, publish bursts and memory, printed as a table with the ratio ours/upstream.
//
// The harness runs the real `secretmount driver` and `secretmount provider` binaries,
// the upstream driver binary, a real kube-apiserver and moto from test/harness, and acts
// as kubelet. It needs root (tmpfs mounts) and the bench build tag; `make bench` runs
// it in full and BENCH_QUICK=1 a one-minute subset. It never asserts a timing: it fails
// only when something does not work, such as a publish. Nothing imports it.
package bench
