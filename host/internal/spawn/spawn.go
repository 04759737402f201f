package spawn

import (
	"os/exec"
	"runtime"
)

// Process is one child started by Start.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // what Wait returned; read after done
}

// Start starts cmd with a parent-death signal (on Linux; SysProcAttr's
// other fields are kept) and reaps it once it exits. Do not call cmd.Wait:
// use Done and Err.
func Start(cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = withDeathSignal(cmd.SysProcAttr)
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked on purpose: the runtime ends the thread with the
		// goroutine, once the child is reaped.
		runtime.LockOSThread()
		defer close(p.done)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Pid is the child's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is what waiting for the child returned (an *exec.ExitError for a
// non-zero status or a signal); nil before Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Exited says whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the child (not to its process group) and waits
// until it is reaped.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Kill() // an error means it has exited meanwhile
	}
	<-p.done
}
