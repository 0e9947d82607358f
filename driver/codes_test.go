package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

func TestCodeOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("volume v: SecretProviderClass ns/c: %w", err) }
	tests := []struct {
		err  error
		want codes.Code
	}{
		{wrap(&providerclass.Error{Field: "objects[0].objectName", Reason: "is required"}), codes.InvalidArgument},
		{wrap(invalidf("bad")), codes.InvalidArgument},
		{wrap(provider.ErrInvalid), codes.InvalidArgument},
		{wrap(errClassNotFound), codes.NotFound},
		{wrap(apierrors.NewNotFound(schema.GroupResource{Resource: "secretproviderclasses"}, "c")), codes.NotFound},
		{wrap(provider.ErrNotFound), codes.NotFound},
		{wrap(provider.ErrPermissionDenied), codes.PermissionDenied},
		{wrap(provider.ErrUnavailable), codes.Unavailable},
		{wrap(provider.ErrUnknownProvider), codes.Unavailable},
		{wrap(context.DeadlineExceeded), codes.DeadlineExceeded},
		{wrap(context.Canceled), codes.Canceled},
		{wrap(&os.PathError{Op: "write", Path: "/pods/p/volumes/v/..2026/f", Err: syscall.ENOSPC}), codes.ResourceExhausted},
		{wrap(errors.New("something else broke")), codes.Internal},
	}
	for _, tt := range tests {
		if got := codeOf(tt.err); got != tt.want {
			t.Errorf("codeOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
		if got := status.Code(toStatus(tt.err)); got != tt.want {
			t.Errorf("toStatus(%v) has code %v, want %v", tt.err, got, tt.want)
		}
	}
	already := status.Error(codes.AlreadyExists, "x")
	if toStatus(already) != already {
		t.Errorf("toStatus changed a status error")
	}
}
