// Command leakscan reads the folder the test suite fills when SECRETMOUNT_LEAK_DIR is set
// (see test/harness: RecordSecretValue, LeakLogger, RecordLeakText) and fails when any
// recorded secret value appears in any other file there: the logs of secretmount
// programs and in-process drivers, events, metrics scrapes and errors the tests saw.
//
// Each value is looked for as it is and in the forms a log or an API could carry it in:
// JSON- and Go-quoted, base64 (standard and URL alphabets, padded or not) and hex; a value
// that is a JSON document is also looked for by each of its string leaves of 10 bytes or
// more (shorter ones are user names and hosts that logs rightly name). A hit is
// reported by file, line and the value's record name, never by the value itself.
//
// It owns only the scan. It must not change the folder it scans, and it must not print a
// value or a line that holds one.
package main
