// Package harness starts the real components the integration tests run against: etcd with
// kube-apiserver, an OpenBao (Vault API) dev server, moto (AWS Secrets Manager, SSM, STS) and
// PostgreSQL. Each starter picks free loopback ports, waits until the component answers,
// captures its output to a log file that is printed when the test fails, and stops the
// process group it started, by PID, when the test (or the test binary) ends.
//
// There are two ways to get a component. StartAPIServer, StartVault, StartMoto and
// StartPostgres start a private instance that t.Cleanup stops. SharedAPIServer,
// SharedVault, SharedMoto and SharedPostgres start one instance per test binary on first
// use and hand the same one to every later caller; Main stops them after the package's
// tests, so a package that uses them needs
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
// Tests sharing an instance must not collide: use APIServer.NewNamespace for a unique
// namespace, and unique secret names, Vault paths, policies, roles and PostgreSQL roles.
//
// Components come from the cache that `make setup` (hack/setup) fills under
// ${SECRETMOUNT_CACHE:-$HOME/.cache/secretmount}; etcd and PostgreSQL are Debian packages.
// When one is missing, or a test needs root and is not root, Unavailable fails the test
// with a clear message if CI=true and skips it with that message otherwise.
//
// With SECRETMOUNT_LEAK_DIR set (`make test` sets it), the harness records for the
// suite-wide leak scan (test/leakscan): the values tests seed (RecordSecretValue; the
// ServiceAccount tokens Token hands out and the Vault root and API admin tokens too), the
// logs of secretmount programs started with StartProgram, in-process loggers
// (LeakLogger), every event and SecretSync status an API server holds when it stops, and
// metrics and errors tests hand it (ScrapeMetrics, RecordLeakText, RecordError).
// Unset, nothing is recorded.
//
// Two proxies sit between secretmount and a component: CountingProxy counts the requests
// that reach it, and FaultProxy injects seeded faults (delays, connection resets,
// truncated answers, 5xx) into a share of them and counts them by kind.
//
// The harness is for tests only: production code must not import it. It must not start
// anything on a non-loopback address or stop a process it did not start.
package harness
