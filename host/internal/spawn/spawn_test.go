package spawn_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/spawn"
)

// TestMain keeps the main thread for the main goroutine: the runtime does
// not end the main thread when a goroutine locked to it returns, and
// TestChildOutlivesTheCallersThread needs its caller's thread to end.
func TestMain(m *testing.M) {
	runtime.LockOSThread()
	os.Exit(m.Run())
}

// TestChildOutlivesTheCallersThread starts a child from a goroutine locked
// to its thread, then lets that goroutine return, which ends the thread.
// A child forked on that thread would get its parent-death signal then
// (what killed the bench's redis-server when a host stopped).
func TestChildOutlivesTheCallersThread(t *testing.T) {
	type res struct {
		p   *spawn.Process
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with us
		p, err := spawn.Start(exec.Command("sleep", "30"))
		ch <- res{p, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.p.Kill()
	// The caller's thread is gone once its goroutine has returned; give
	// the kernel's signal, had it been armed, ample time to land.
	select {
	case <-r.p.Done():
		t.Fatalf("the child died with the thread of the goroutine that asked for it: %v", r.p.Err())
	case <-time.After(300 * time.Millisecond):
	}
}

// TestKillReapsAndReports checks Kill, Exited and Err.
func TestKillReapsAndReports(t *testing.T) {
	p, err := spawn.Start(exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Exited() || p.Err() != nil || p.Pid() <= 0 {
		t.Fatalf("running child: exited %v, err %v, pid %d", p.Exited(), p.Err(), p.Pid())
	}
	p.Kill()
	var exit *exec.ExitError
	if !p.Exited() || !errors.As(p.Err(), &exit) {
		t.Fatalf("after Kill: exited %v, err %v", p.Exited(), p.Err())
	}
	p.Kill() // a second Kill returns at once
}

// TestKeepsTheCallersAttributes checks that Start adds the death signal
// to the caller's SysProcAttr instead of replacing it.
func TestKeepsTheCallersAttributes(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := spawn.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	pgid, err := syscall.Getpgid(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if pgid != p.Pid() {
		t.Fatalf("the child's process group is %d, want its own (%d)", pgid, p.Pid())
	}
}

func TestStartError(t *testing.T) {
	if _, err := spawn.Start(exec.Command("/nonexistent/berth-spawn-test")); err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
}
