//go:build integration

package interop

import (
	"testing"

	"github.com/secretmount/secretmount/test/harness"
)

// requireRoot: both drivers mount tmpfs.
func requireRoot(t *testing.T) { t.Helper(); harness.RequireRoot(t) }
