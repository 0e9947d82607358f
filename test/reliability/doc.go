// Package reliability holds the suites that show secretmount loses nothing and leaks
// nothing under bad input and pressure: the bad-input corpus of test/testdata/bad run
// through the real CSI Node socket and the real provider Mount socket, torn-read checks
// during rotation, a full tmpfs, the mount options of published volumes, and isolation:
// no class of another namespace, no ServiceAccount of another namespace for a SecretSync,
// no credentials or cached content shared between ServiceAccounts; and faults: publishes
// and rotation through a proxy (harness.FaultProxy) that delays, resets, truncates and
// answers 5xx between secretmount and moto or Vault.
//
// It owns only tests. It must not change the behaviour of the packages it tests, and
// its fakes stand in at the wire only: a SecretProviderClass map in place of the
// informer cache, an external provider answering over its own socket, and the fault
// proxy in front of the real backends.
package reliability
