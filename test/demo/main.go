package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"
)

type options struct {
	secretmount string
	workDir     string
	interval    time.Duration
	ci          bool
}

func main() {
	o := options{}
	flag.StringVar(&o.secretmount, "secretmount", "bin/secretmount", "the secretmount binary to run")
	flag.StringVar(&o.workDir, "work-dir", "", "folder for logs, sockets and mounts; empty means a new temporary folder, removed at the end")
	flag.DurationVar(&o.interval, "rotation-interval", 5*time.Second, "rotation poll interval of the driver and the sync controller")
	flag.BoolVar(&o.ci, "ci", false, "CI mode: keep the work folder's logs on failure and print their tails")
	flag.Parse()
	os.Exit(demo(os.Stdout, o))
}

// demo runs every step and returns the exit code: 0 only when every step passed and
// everything it started was stopped.
func demo(out io.Writer, o options) (code int) {
	start := time.Now()
	bin, err := filepath.Abs(o.secretmount)
	if err != nil {
		fmt.Fprintf(out, "ERROR: %v\n", err)
		return 1
	}
	o.secretmount = bin
	keep := o.workDir != ""
	if o.workDir == "" {
		// Under /tmp rather than $TMPDIR: the volume's tmpfs and the socket path must stay short.
		dir, err := os.MkdirTemp("", "secretmount-demo-")
		if err != nil {
			fmt.Fprintf(out, "ERROR: work folder: %v\n", err)
			return 1
		}
		o.workDir = dir
	} else if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		fmt.Fprintf(out, "ERROR: work folder: %v\n", err)
		return 1
	}
	r := newRunner(out, o.workDir)
	d := &demoRun{r: r, o: o, out: out}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d.ctx = ctx
	go func() {
		<-ctx.Done()
		if !d.finished() {
			fmt.Fprintln(out, "interrupted: stopping everything the demo started")
		}
	}()

	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(stepFailed); !ok {
					r.Errorf("step panicked: %v\n%s", p, debug.Stack())
				}
			}
		}()
		d.run()
	}()
	d.finish()
	failedBeforeCleanup := r.Failed()
	if failedBeforeCleanup {
		d.showLogs()
	}
	fmt.Fprintln(out, "stopping every process the demo started")
	r.runCleanups()
	if !keep && !r.Failed() {
		_ = os.RemoveAll(o.workDir)
	} else {
		fmt.Fprintf(out, "logs kept in %s\n", o.workDir)
	}
	if r.Failed() {
		fmt.Fprintf(out, "DEMO FAILED after %s\n", time.Since(start).Round(100*time.Millisecond))
		return 1
	}
	fmt.Fprintf(out, "DEMO OK in %s\n", time.Since(start).Round(100*time.Millisecond))
	return 0
}
