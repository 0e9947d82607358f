package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// runner lets the demo use test/harness, whose starters take a testing.TB, outside a
// test binary. The embedded TB is nil: a harness method it does not implement panics,
// and main reports that as a failed step like any other.
type runner struct {
	testing.TB

	out io.Writer
	tmp string

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// stepFailed unwinds the demo from Fatal; main recovers it after the message is printed.
type stepFailed struct{}

func newRunner(out io.Writer, tmp string) *runner { return &runner{out: out, tmp: tmp} }

func (r *runner) Helper()      {}
func (r *runner) Name() string { return "secretmount-demo" }

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// runCleanups runs the cleanups last first, as testing does; a panicking cleanup is
// reported and does not keep the others from running.
func (r *runner) runCleanups() {
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		f := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		func() {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(stepFailed); !ok {
						r.Errorf("cleanup: %v", p)
					}
				}
			}()
			f()
		}()
	}
}

func (r *runner) Logf(format string, args ...any) { fmt.Fprintf(r.out, "       "+format+"\n", args...) }
func (r *runner) Log(args ...any)                 { r.Logf("%s", fmt.Sprint(args...)) }

func (r *runner) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintf(r.out, "ERROR: "+format+"\n", args...)
}
func (r *runner) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *runner) Fail() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}
func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
func (r *runner) FailNow() { r.Fail(); panic(stepFailed{}) }
func (r *runner) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(stepFailed{})
}
func (r *runner) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// A missing component is a failure for the demo: it exists to show them all.
func (r *runner) Skipf(format string, args ...any) { r.Fatalf("unavailable: "+format, args...) }
func (r *runner) Skip(args ...any)                 { r.Fatalf("unavailable: %s", fmt.Sprint(args...)) }
func (r *runner) SkipNow()                         { r.Fatalf("unavailable") }
func (r *runner) Skipped() bool                    { return false }

func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp(r.tmp, "harness-")
	if err != nil {
		r.Fatalf("temporary folder: %v", err)
	}
	return dir
}

func (r *runner) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		r.Fatalf("set %s: %v", key, err)
	}
	r.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

func (r *runner) Context() context.Context { return context.Background() }
