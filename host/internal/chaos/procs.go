package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/host/internal/spawn"
)

// proc is a process the suite started. Every one is in the suite's
// procSet, which kills what is left on the way out.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	// exit is the process's end, once done is closed.
	exit error
	log  string // path of its output
}

// pid returns the process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive tells whether the process has not ended.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process (never to a group).
func (p *proc) signal(sig syscall.Signal) error {
	if !p.alive() {
		return fmt.Errorf("%s: already ended", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits, up to 10 s, for the end.
func (p *proc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// waitEnd waits up to d for the process to end.
func (p *proc) waitEnd(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// tail returns the last n lines of the process's output.
func (p *proc) tail(n int) []string {
	raw, err := os.ReadFile(p.log)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// procSet holds every process the suite started.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
}

// start starts a process with its output in logPath. It gets SIGKILL when
// the suite dies (Pdeathsig) and its own process group, so that a Ctrl-C
// at the terminal reaches the suite only, which then cleans up in order.
func (s *procSet) start(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sp, err := spawn.Start(cmd) // with its parent-death signal
	if err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		<-sp.Done()
		p.exit = sp.Err()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// killAll kills every process left, with the children of each (a plugin
// of a frozen host does not get its parent-death signal until the host
// dies, and a stopped plugin must not be left behind).
func (s *procSet) killAll() {
	s.mu.Lock()
	ps := append([]*proc(nil), s.procs...)
	s.procs = nil
	s.mu.Unlock()
	for _, p := range ps {
		if !p.alive() {
			continue
		}
		kids := children(p.pid())
		p.kill()
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// children returns the PIDs of the processes whose parent is pid (Linux:
// /proc/<pid>/stat, field 4).
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(string(raw)); ok && ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

// parentOf reads the parent PID from the text of /proc/<pid>/stat: the
// fourth field, after the command in parentheses (which may hold spaces).
func parentOf(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor calls cond every step until it returns nil, ctx ends or d
// passes, and returns the last error.
func waitFor(ctx context.Context, d, step time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", d.Round(time.Millisecond), err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(step):
		}
	}
}

// rssAndFDs reads a process's resident memory (MiB) and open files.
func rssAndFDs(pid int) (float64, int) {
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	raw, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	var rss float64
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			rss = kb / 1024
		}
	}
	return rss, len(fds)
}
