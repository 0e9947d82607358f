package aws

import (
	"context"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/logging"
	"github.com/go-logr/logr/funcr"

	"github.com/secretmount/secretmount/providerclass"
)

// TestSDKLoggerLevels: the SDK's warnings are logged at info level, its debug lines only
// at V(1), both marked as the SDK's.
func TestSDKLoggerLevels(t *testing.T) {
	tests := []struct {
		name      string
		class     logging.Classification
		verbosity int
		want      string // "" when nothing may be logged
	}{
		{"warn at V(0)", logging.Warn, 0, `"level"=0 "msg"="failed 3 times" "source"="aws-sdk" "classification"="WARN"`},
		{"debug hidden at V(0)", logging.Debug, 0, ""},
		{"debug at V(1)", logging.Debug, 1, `"level"=1 "msg"="failed 3 times" "source"="aws-sdk"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logSink{}
			l := sdkLogger{log: funcr.New(logs.add, funcr.Options{Verbosity: tc.verbosity})}
			l.Logf(tc.class, "failed %d times", 3)
			got := strings.TrimSpace(logs.text())
			if got != tc.want {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSDKLogsReachBackendLogger: every client the backend builds logs through the
// backend's logger with request and response logging off (which would log bodies, that
// is, values), and the SDK's warning about a cut-short answer arrives there rather than
// on stderr.
func TestSDKLogsReachBackendLogger(t *testing.T) {
	logs := &logSink{}
	env := newTestEnv(t, nil)
	front := newCutter(t, env.fake, map[string]int{"GetSecretValue": 1})
	opts := env.backend.opts
	opts.Endpoint = front.srv.URL
	opts.Logger = funcr.New(logs.add, funcr.Options{})
	b, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if b.base.ClientLogMode != 0 {
		t.Errorf("base ClientLogMode = %v, want 0", b.base.ClientLogMode)
	}
	if _, ok := b.base.Logger.(sdkLogger); !ok {
		t.Errorf("base Logger = %T, want sdkLogger", b.base.Logger)
	}
	sm := b.secretsManager("us-east-1", session{}).Options()
	ps := b.parameterStore("us-east-1", session{}).Options()
	clients := []struct {
		name   string
		mode   sdkaws.ClientLogMode
		logger logging.Logger
	}{
		{"secretsmanager", sm.ClientLogMode, sm.Logger},
		{"ssm", ps.ClientLogMode, ps.Logger},
	}
	for _, c := range clients {
		if c.mode != 0 {
			t.Errorf("%s ClientLogMode = %v, want 0", c.name, c.mode)
		}
		if _, ok := c.logger.(sdkLogger); !ok {
			t.Errorf("%s Logger = %T, want sdkLogger", c.name, c.logger)
		}
	}

	env.fake.putSecret("us-east-1", "prod/a", "logged-nowhere-value")
	if _, err := b.Fetch(context.Background(), awsPlan(providerclass.AWSParameters{}, secretObject("prod/a")), identity("app", "web")); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	text := logs.text()
	if !strings.Contains(text, `"source"="aws-sdk"`) {
		t.Errorf("no SDK line in the backend's log after a cut-short answer:\n%s", text)
	}
	if strings.Contains(text, "logged-nowhere-value") {
		t.Errorf("the log holds the value:\n%s", text)
	}
}
