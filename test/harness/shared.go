package harness

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// component is what Main stops at the end of a test binary.
type component interface {
	instanceOf() *instance
}

// shared holds the per-binary instances of the Shared* starters.
var shared struct {
	mu      sync.Mutex
	main    bool        // Main is running the tests
	started []component // in start order, stopped in reverse
}

// Main runs the package's tests and then stops every instance the Shared* starters
// started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
// It returns after the tests, and the testing package exits with m.Run's code.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	started := shared.started
	shared.started = nil
	shared.main = false
	shared.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].instanceOf().stop(); err != nil {
			// No test is left to fail; stderr is where go test shows this.
			fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		}
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "harness: shared components stopped; failing tests printed their logs")
	}
}

// slot starts its component once per test binary and remembers the outcome, so a
// component that cannot start fails (or skips) each test that asks for it without
// retrying the start each time.
type slot[T component] struct {
	once sync.Once
	v    T
	err  error
}

func (s *slot[T]) get(t testing.TB, name string, start func() (T, error)) T {
	t.Helper()
	shared.mu.Lock()
	inMain := shared.main
	shared.mu.Unlock()
	if !inMain {
		t.Fatalf("harness.Shared%s needs the package's TestMain to call harness.Main(m), which stops shared components after the tests", name)
		var none T
		return none
	}
	s.once.Do(func() {
		s.v, s.err = start()
		if s.err == nil {
			shared.mu.Lock()
			shared.started = append(shared.started, s.v)
			shared.mu.Unlock()
		}
	})
	if s.err != nil {
		failStart(t, name, s.err)
	}
	s.v.instanceOf().logOnFailure(t)
	return s.v
}

var (
	sharedAPIServer slot[*APIServer]
	sharedMoto      slot[*Moto]
	sharedVault     slot[*Vault]
	sharedPostgres  slot[*Postgres]
)

// SharedAPIServer returns this test binary's kube-apiserver, starting it on first use.
func SharedAPIServer(t testing.TB) *APIServer {
	t.Helper()
	return sharedAPIServer.get(t, "APIServer", startAPIServer)
}

// SharedMoto returns this test binary's moto server, starting it on first use.
func SharedMoto(t testing.TB) *Moto {
	t.Helper()
	return sharedMoto.get(t, "Moto", startMoto)
}

// SharedVault returns this test binary's OpenBao dev server, starting it on first use.
func SharedVault(t testing.TB) *Vault {
	t.Helper()
	return sharedVault.get(t, "Vault", startVault)
}

// SharedPostgres returns this test binary's PostgreSQL cluster, starting it on first use.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	return sharedPostgres.get(t, "Postgres", startPostgres)
}
