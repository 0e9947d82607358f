package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a component gets to exit after its stop signal before its
// process group is killed.
const stopGrace = 20 * time.Second

// process is one component process: its own process group, output in a log file, and
// a channel closed when it exits so readiness waits can give up at once.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     string
	stopSig syscall.Signal
	exited  chan struct{}
	waitErr error
}

// processSpec says how to run a component process.
type processSpec struct {
	name    string   // for messages: "etcd", "kube-apiserver"
	path    string   // binary
	args    []string // arguments
	dir     string   // working directory
	log     string   // file that receives stdout and stderr
	env     []string // full environment; nil means a minimal one
	stopSig syscall.Signal
	cred    *syscall.Credential // run as this user (PostgreSQL refuses root)
}

func startProcess(spec processSpec) (*process, error) {
	logFile, err := os.OpenFile(spec.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open the log of %s: %w", spec.name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Dir = spec.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = spec.env
	if cmd.Env == nil {
		cmd.Env = minimalEnv(spec.dir)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own lets stop reach the component's children too; the
		// death signal stops it if the test binary is killed before its cleanup runs.
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: spec.cred,
	}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("failed to run %s (%s): %w", spec.name, spec.path, err)
	}
	p := &process{name: spec.name, cmd: cmd, log: spec.log, stopSig: spec.stopSig, exited: make(chan struct{})}
	if p.stopSig == 0 {
		p.stopSig = syscall.SIGTERM
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// minimalEnv keeps the test's environment (proxies, locale) away from components that
// read configuration from it (VAULT_*, BAO_*, AWS_*, PG*), and gives each a HOME of its
// own so none writes into the real one.
func minimalEnv(home string) []string {
	env := []string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	if tz := os.Getenv("TZ"); tz != "" {
		env = append(env, "TZ="+tz)
	}
	return env
}

// pid is the process's id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exitedErr returns an error when the process has already exited.
func (p *process) exitedErr() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s (pid %d) exited early: %v", p.name, p.pid(), p.waitErr)
	default:
		return nil
	}
}

// stop signals the process group, waits for the process to exit and kills the group if
// it does not within stopGrace.
func (p *process) stop() error {
	select {
	case <-p.exited:
		// Children may outlive the leader; the group id is still ours to signal.
		return p.killGroup()
	default:
	}
	if err := syscall.Kill(-p.pid(), p.stopSig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("failed to signal %s (pid %d): %w", p.name, p.pid(), err)
	}
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.killGroup()
	case <-timer.C:
	}
	killErr := p.killGroup()
	<-p.exited
	return errors.Join(fmt.Errorf("%s (pid %d) did not stop within %s of %s and was killed", p.name, p.pid(), stopGrace, p.stopSig), killErr)
}

// killGroup kills what is left of the process group and waits until it is gone, so the
// ports and files it held are free when stop returns.
func (p *process) killGroup() error {
	pgid := p.pid()
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("failed to kill the process group of %s (%d): %w", p.name, pgid, err)
	}
	deadline := time.Now().Add(stopGrace)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of %s's group %d still run %s after SIGKILL", p.name, pgid, stopGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// groupAlive reports whether a process other than a zombie is in process group pgid.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after "(comm)" are: state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
