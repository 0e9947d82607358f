package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/secretmount/secretmount/provider"
)

// classify wraps a failed Vault call in a provider error kind. what names the call, the
// object and the role; Vault's own error strings are kept because they say why (they
// carry paths and reasons, not values).
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		reason := strings.Join(re.Errors, "; ")
		if re.RawError || reason == "" {
			reason = http.StatusText(re.StatusCode)
		}
		return fmt.Errorf("%s: vault answered %d: %s: %w", what, re.StatusCode, reason, kindOf(re.StatusCode, reason))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, provider.ErrUnavailable, err)
	}
	// Connection refused, TLS failures, timeouts: the server could not be talked to.
	return fmt.Errorf("%s: %v: %w", what, err, provider.ErrUnavailable)
}

func kindOf(status int, reason string) error {
	lower := strings.ToLower(reason)
	switch {
	case status == http.StatusForbidden, status == http.StatusUnauthorized,
		strings.Contains(lower, "permission denied"),
		strings.Contains(lower, "not authorized"),
		strings.Contains(lower, "invalid role name"):
		return provider.ErrPermissionDenied
	case status == http.StatusNotFound:
		return provider.ErrNotFound
	case status == http.StatusTooManyRequests, status >= 500:
		return provider.ErrUnavailable
	default:
		return provider.ErrInvalid
	}
}

// isForbidden reports whether Vault refused the token for a request.
func isForbidden(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
