// Package mlog stands in for monis.app/mlog, which the module proxy refuses, so that
// the upstream driver builds for the interop tests. It covers only the functions the
// driver calls, with klog underneath.
package mlog

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"

	"k8s.io/klog/v2"
)

// LogFormat is the output format the driver asks for.
type LogFormat string

// The formats the driver selects between; both log as klog text here.
const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// Setup returns the function that flushes the logs on exit.
func Setup() func() { return klog.Flush }

// ValidateAndSetKlogLevelAndFormatGlobally sets klog's verbosity to level.
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, level klog.Level, format LogFormat) error {
	if format != FormatText && format != FormatJSON {
		return fmt.Errorf("unknown log format %q", format)
	}
	if level < 0 {
		return nil
	}
	fs := flag.NewFlagSet("mlog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs.Set("v", strconv.Itoa(int(level)))
}

// Error logs err with a message and key-value pairs.
func Error(msg string, err error, keysAndValues ...any) {
	klog.ErrorS(err, msg, keysAndValues...)
}

// Fatal logs err and exits the process, as the original does.
func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal", keysAndValues...)
	klog.Flush()
	os.Exit(1)
}
