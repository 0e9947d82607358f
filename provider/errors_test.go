package provider

import (
	"errors"
	"fmt"
	"testing"
)

// TestHasKind proves HasKind sees a Fetch kind through wrapping, and nothing else.
func TestHasKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("object %q: %w", "db", ErrNotFound), true},
		{fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", ErrUnavailable)), true},
		{ErrInvalid, true},
		{ErrPermissionDenied, true},
		{ErrUnknownProvider, false},
		{errors.New("connection reset"), false},
		{nil, false},
	} {
		if got := HasKind(tc.err); got != tc.want {
			t.Errorf("HasKind(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
