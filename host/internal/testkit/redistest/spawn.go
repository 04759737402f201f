package redistest

import (
	"os/exec"
	"runtime"
	"sync"
)

// spawner starts every child process from a single goroutine locked to its OS
// thread. On Linux the children carry a parent-death signal, which the kernel
// sends when the thread that forked them exits; Go never retires a thread
// while a goroutine is locked to it, so the children live exactly as long as
// this goroutine, which lives until stopSpawner (Cleanup) or process exit.
var spawner struct {
	mu   sync.Mutex
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// startProcess runs cmd.Start on the spawner's thread.
func startProcess(cmd *exec.Cmd) error {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	if spawner.reqs == nil {
		spawner.reqs = make(chan spawnReq)
		spawner.done = make(chan struct{})
		go spawnLoop(spawner.reqs, spawner.done)
	}
	req := spawnReq{cmd: cmd, errc: make(chan error, 1)}
	spawner.reqs <- req
	return <-req.errc
}

func spawnLoop(reqs <-chan spawnReq, done chan<- struct{}) {
	// Never unlocked on purpose: when this goroutine returns, the runtime
	// terminates the thread and the kernel kills the children it started.
	runtime.LockOSThread()
	defer close(done)
	for req := range reqs {
		req.errc <- req.cmd.Start()
	}
}

// stopSpawner ends the spawning goroutine and waits for it. Any child still
// running receives its parent-death signal.
func stopSpawner() {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	if spawner.reqs == nil {
		return
	}
	close(spawner.reqs)
	<-spawner.done
	spawner.reqs, spawner.done = nil, nil
}
