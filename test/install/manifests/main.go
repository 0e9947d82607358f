// Command manifests writes deploy/ from the chart: the plain manifests for users who
// do not use Helm. It renders with the chart's default values into the
// secretmount-system namespace. Run it through `make manifests`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/secretmount/secretmount/test/install"
)

func main() {
	chart := flag.String("chart", "charts/secretmount", "chart folder")
	out := flag.String("out", "deploy", "output folder")
	flag.Parse()
	if err := install.WriteManifests(*chart, *out); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}
