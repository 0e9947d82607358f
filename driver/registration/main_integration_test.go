//go:build integration

package registration

import (
	"testing"

	"github.com/secretmount/secretmount/test/harness"
)

// TestMain stops the shared API server after the tests.
func TestMain(m *testing.M) { harness.Main(m) }
