package harness

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// Unavailable reports that a test cannot run here: a component is not installed, or the
// test needs privileges it does not have. Under CI (CI=true) that is a failure, because CI
// is expected to have run `make setup` as root; elsewhere the test is skipped with the
// same message, so a developer without the components can still run the rest.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this is a failure, not a skip)", msg)
		return
	}
	t.Skipf("%s (set CI=true to make this a failure)", msg)
}

// RequireRoot calls Unavailable unless the test runs as root (tmpfs mounts, for example).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "this test needs root (euid is %d)", os.Geteuid())
	}
}

// unavailableError marks a start failure that is the machine's fault (nothing to test
// against) rather than the code's, so starters report it through Unavailable.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }

func unavailablef(format string, args ...any) error {
	return &unavailableError{msg: fmt.Sprintf(format, args...)}
}

// failStart ends the test for a starter's error: Unavailable for a missing component,
// Fatal for anything else.
func failStart(t testing.TB, component string, err error) {
	t.Helper()
	var u *unavailableError
	if errors.As(err, &u) {
		Unavailable(t, "%s: %s", component, u.msg)
		return
	}
	t.Fatalf("failed to start %s: %v", component, err)
}
