package plugin

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// toStatus is the one place the server picks a gRPC code. The upstream driver passes
// the status through to kubelet, so the codes are those of a CSI node.
func toStatus(err error) error {
	var classErr *providerclass.Error
	code := codes.Internal
	switch {
	case errors.As(err, &classErr), errors.Is(err, provider.ErrInvalid), errors.Is(err, provider.ErrUnknownProvider):
		code = codes.InvalidArgument
	case errors.Is(err, provider.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, provider.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, provider.ErrUnavailable):
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}

// fromStatus turns the status an external provider answered with back into the error
// kinds of package provider, naming the provider.
func fromStatus(name string, err error) error {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return fmt.Errorf("provider %q rejected the mount: %s: %w", name, msg, provider.ErrInvalid)
	case codes.NotFound:
		return fmt.Errorf("provider %q: %s: %w", name, msg, provider.ErrNotFound)
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("provider %q: %s: %w", name, msg, provider.ErrPermissionDenied)
	case codes.DeadlineExceeded:
		return fmt.Errorf("provider %q did not answer in time: %w", name, context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("provider %q: call cancelled: %w", name, context.Canceled)
	default:
		return fmt.Errorf("provider %q failed (%s): %s: %w", name, st.Code(), msg, provider.ErrUnavailable)
	}
}
