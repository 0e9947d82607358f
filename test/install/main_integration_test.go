//go:build integration

package install

import (
	"testing"

	"github.com/secretmount/secretmount/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
