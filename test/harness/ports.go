package harness

import (
	"fmt"
	"net"
	"strings"
)

// freePort returns a loopback TCP port that was free a moment ago. Another process can
// take it before the component binds it; starters retry with new ports when a component
// exits during start-up for that reason.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	// Hold every listener until all are chosen so the n ports differ.
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("failed to find a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portAttempts is how many times a starter tries fresh ports when a component could not
// bind the ones it was given.
const portAttempts = 3

// retryPortClash runs start again, with the fresh ports it picks itself, when the error
// it returns shows a port was taken between choosing it and binding it.
func retryPortClash[T any](start func() (T, error)) (T, error) {
	var v T
	var err error
	for range portAttempts {
		v, err = start()
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return v, err
		}
	}
	return v, err
}
