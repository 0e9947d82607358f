package driver

import (
	"context"
	"errors"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/secretmount/secretmount/provider"
	"github.com/secretmount/secretmount/providerclass"
)

// errClassNotFound: the pod's namespace has no SecretProviderClass of that name.
var errClassNotFound = errors.New("SecretProviderClass not found")

// codeOf picks the gRPC code of an error of the mount path. This is the only place the
// driver chooses codes.
//
// An unknown spec.provider maps to Unavailable, not InvalidArgument: external providers
// are found by their plugin socket, which a provider DaemonSet may not have created yet,
// and kubelet retries Unavailable with back-off, so the pod starts once it is there.
// The message lists the registered providers, so a typo is still plain to see.
func codeOf(err error) codes.Code {
	var perr *providerclass.Error
	var ierr *invalidError
	switch {
	case err == nil:
		return codes.OK
	case errors.As(err, &perr), errors.As(err, &ierr), errors.Is(err, provider.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, errClassNotFound), apierrors.IsNotFound(err), errors.Is(err, provider.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, provider.ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, provider.ErrUnavailable), errors.Is(err, provider.ErrUnknownProvider):
		return codes.Unavailable
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The volume's tmpfs is full; the previous content is intact.
		return codes.ResourceExhausted
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Internal
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}
