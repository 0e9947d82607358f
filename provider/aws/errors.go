package aws

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/secretmount/secretmount/provider"
)

// Error codes by kind. AWS error messages name resources, never their values, so they
// may be passed on; codes not listed fall back on the HTTP status.
var (
	notFoundCodes = codeSet(
		"ResourceNotFoundException", // Secrets Manager
		"ParameterNotFound", "ParameterVersionNotFound", "ParameterVersionLabelNotFound",
	)
	deniedCodes = codeSet(
		"AccessDeniedException", "AccessDenied",
		"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
		"SignatureDoesNotMatch", "ExpiredTokenException", "ExpiredToken",
		"InvalidIdentityToken", "IDPRejectedClaim", "MissingAuthenticationToken",
		"IncompleteSignature", "DecryptionFailure", "KMSAccessDeniedException",
		"NotAuthorized",
	)
	unavailableCodes = codeSet(
		"InternalServiceError", "InternalServiceErrorException", "InternalFailure",
		"InternalServerError", "InternalError", "ServiceUnavailable", "ServiceUnavailableException",
		"IDPCommunicationError", "RequestTimeout", "RequestTimeoutException",
		"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
		"TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "LimitExceededException",
		"KMSInternalException",
	)
)

func codeSet(codes ...string) map[string]bool {
	m := make(map[string]bool, len(codes))
	for _, c := range codes {
		m[c] = true
	}
	return m
}

// classify wraps err (from an AWS call about what) in one provider error kind. what
// names the object and the region, e.g. `secretsmanager object "db" (objects[0]) in us-east-1`.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("%s: %w: %w", what, provider.ErrUnavailable, ctxErr)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		kind := kindOfCode(code, statusCode(err))
		return fmt.Errorf("%s: %s: %s: %w", what, code, apiErr.ErrorMessage(), kind)
	}
	var deserErr *smithy.DeserializationError
	if errors.As(err, &deserErr) {
		// A decoding error can quote the response body, which may hold the value: say
		// only what the status says.
		if status := statusCode(err); status >= 400 {
			return fmt.Errorf("%s: HTTP status %d with an undecodable error body: %w", what, status, kindOfCode("", status))
		}
		return fmt.Errorf("%s: malformed response from AWS: %w", what, provider.ErrUnavailable)
	}
	if status := statusCode(err); status != 0 {
		return fmt.Errorf("%s: HTTP status %d: %w", what, status, kindOfCode("", status))
	}
	return fmt.Errorf("%s: %v: %w", what, transportMessage(err), provider.ErrUnavailable)
}

// rejectedCredentialCodes mean AWS no longer takes the credentials (expired early,
// revoked session): minting new ones may succeed.
var rejectedCredentialCodes = codeSet("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException")

// failed classifies a fetch failure, and forgets the fetch's credentials when AWS
// rejected them, so the next fetch mints new ones instead of failing until they expire.
func (b *Backend) failed(f *fetch, what string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && rejectedCredentialCodes[apiErr.ErrorCode()] {
		b.creds.forget(f.sess.scope)
	}
	return classify(what, err)
}

// kindOfCode maps an AWS error code, or failing that an HTTP status, to an error kind.
func kindOfCode(code string, status int) error {
	switch {
	case notFoundCodes[code]:
		return provider.ErrNotFound
	case deniedCodes[code]:
		return provider.ErrPermissionDenied
	case unavailableCodes[code]:
		return provider.ErrUnavailable
	case status == 401 || status == 403:
		return provider.ErrPermissionDenied
	case status == 404:
		return provider.ErrNotFound
	case status == 429 || status >= 500:
		return provider.ErrUnavailable
	case status >= 400:
		return provider.ErrInvalid
	case code != "":
		return provider.ErrInvalid
	}
	return provider.ErrUnavailable
}

func statusCode(err error) int {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}

func contextError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return nil
}

// transportMessage keeps the useful part of a transport failure (which host, which
// network error) without the SDK's operation preamble.
func transportMessage(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	return err.Error()
}

// retryable reports whether a failure may succeed in the failover region: throttling,
// 5xx, timeouts, network failures. Denials, missing objects and bad requests are
// answers, not outages, and are returned as they are (as the AWS provider does).
func retryable(err error) bool {
	return errors.Is(err, provider.ErrUnavailable) && !errors.Is(err, context.Canceled)
}
