package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

// run scans the folder named by args and returns the exit code: 0 only when values were
// recorded and none was found.
func run(args []string, out io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(out, "usage: leakscan <leak folder>")
		return 2
	}
	r, err := Scan(args[0])
	if err != nil {
		fmt.Fprintf(out, "leakscan: %v\n", err)
		return 1
	}
	for _, h := range r.Hits {
		fmt.Fprintf(out, "LEAK %s:%d: value %s (%s form)\n", h.File, h.Line, h.Value, h.Form)
	}
	fmt.Fprintf(out, "leakscan: %d values recorded (%d too short to scan), %d forms; %d files, %d lines, %d bytes scanned; %d hits\n",
		r.Values, r.Short, r.Needles, r.Files, r.Lines, r.Bytes, len(r.Hits))
	switch {
	case len(r.Hits) > 0:
		fmt.Fprintln(out, "leakscan: FAILED: secret values appear in the files above")
		return 1
	case r.Values-r.Short == 0:
		// A scan for nothing proves nothing: the suite's seeding helpers record values.
		fmt.Fprintln(out, "leakscan: FAILED: no secret value was recorded, so nothing was checked")
		return 1
	case r.Files == 0:
		fmt.Fprintln(out, "leakscan: FAILED: no log, event, metric or error was recorded, so nothing was checked")
		return 1
	}
	return 0
}
