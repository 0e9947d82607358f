package provider

import "errors"

// Error kinds. Backends wrap one of these (fmt.Errorf("...: %w", provider.ErrNotFound))
// with a message that names the object, never its value; the CSI and provider-API
// boundaries map them to gRPC codes.
var (
	// ErrInvalid: the request cannot succeed as written (bad parameter, bad content type).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: the object or version does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: the identity may not read the object, or cannot authenticate.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnavailable: the backend could not be reached or failed; retrying may succeed.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrUnknownProvider: no backend is registered for spec.provider.
	ErrUnknownProvider = errors.New("unknown provider")
)

// HasKind reports whether err carries one of the kinds a backend's Fetch returns:
// ErrInvalid, ErrNotFound, ErrPermissionDenied or ErrUnavailable.
func HasKind(err error) bool {
	for _, kind := range []error{ErrInvalid, ErrNotFound, ErrPermissionDenied, ErrUnavailable} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}
