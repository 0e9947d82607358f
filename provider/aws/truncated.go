package aws

import (
	"encoding/xml"
	"errors"
	"io"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// retryTruncated makes an answer cut short retryable. The SDK retries a connection that
// fails before the answer, but an answer whose body ends early (a proxy or load balancer
// closing mid-body) reaches the deserializer and fails the request at once; it is as
// transient as a reset, so it takes the same bounded attempts.
var retryTruncated = retry.IsErrorRetryableFunc(func(err error) sdkaws.Ternary {
	if truncated(err) {
		return sdkaws.TrueTernary
	}
	return sdkaws.UnknownTernary
})

// truncated reports whether err is an answer body that ended early: the HTTP body
// reader's io.ErrUnexpectedEOF (the body was shorter than its Content-Length), or, for
// the XML protocols (STS), the decoder's own "unexpected EOF" when the body ended cleanly
// inside an element.
func truncated(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var deserErr *smithy.DeserializationError
	if !errors.As(err, &deserErr) {
		return false
	}
	var syntaxErr *xml.SyntaxError
	return errors.As(deserErr, &syntaxErr) && syntaxErr.Msg == "unexpected EOF"
}
