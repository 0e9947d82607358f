package harness

import (
	"fmt"
	"time"
)

// pollInterval is how often a readiness check is retried.
const pollInterval = 200 * time.Millisecond

// waitReady calls check until it returns nil, one of procs exits, or timeout passes. The
// timeout bounds a start-up, it is not a claim about speed: it is generous because two
// test packages may start components at once on two cores.
func waitReady(what string, timeout time.Duration, procs []*process, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		for _, p := range procs {
			if err := p.exitedErr(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		if last = check(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", what, timeout, last)
		}
		time.Sleep(pollInterval)
	}
}
