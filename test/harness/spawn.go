package harness

import (
	"os/exec"
	"runtime"
	"sync"
)

// Pdeathsig fires when the thread that forked a child exits, not the process. Go ends a
// thread when a goroutine that locked it exits locked (tests that enter namespaces do),
// and any goroutine may have run on the thread that started a shared API server. So every
// component is forked from one goroutine locked to its own thread that never exits.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn starts cmd from the spawner's thread.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}
