package aws

import (
	"fmt"

	"github.com/aws/smithy-go/logging"
	"github.com/go-logr/logr"
)

// sdkLogger routes the SDK's own log lines (for example "failed to discard remaining
// HTTP response body" after a cut-short answer) to the backend's logger instead of
// stderr. The SDK logs request and response contents only when aws.Config.ClientLogMode
// asks for them, and the backend keeps that off, so these lines name operations and
// failures, never values.
type sdkLogger struct{ log logr.Logger }

var _ logging.Logger = sdkLogger{}

// Logf logs a WARN line at info level (logr has no warning level) and a DEBUG line at
// V(1), so SDK debugging appears only when asked for.
func (l sdkLogger) Logf(classification logging.Classification, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if classification == logging.Debug {
		l.log.V(1).Info(msg, "source", "aws-sdk")
		return
	}
	l.log.Info(msg, "source", "aws-sdk", "classification", string(classification))
}
