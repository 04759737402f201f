package core

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"
)

// watchParent calls gone once the process's parent is no longer ppid (the
// parent died and the process was re-parented). The host also sets a
// parent-death signal on the plugin; this covers the cases that signal
// misses (a plugin started by something else, or a signal lost in a race
// at start-up).
//
// It also calls frozen, once per stop, when the parent has been stopped
// (SIGSTOP, a debugger's stop: state T in /proc) for frozenAfter: such a
// host renews no lease, so another host is about to run its jobs, and the
// runs here must end first (frozenAfter is well under the shortest lease).
// Elsewhere than Linux the state cannot be read, and frozen is never called.
func watchParent(ctx context.Context, ppid int, every, frozenAfter time.Duration, gone, frozen func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	f := freeze{after: frozenAfter}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if os.Getppid() != ppid {
				gone()
				return
			}
			if frozen != nil && f.observe(processStopped(ppid), now) {
				frozen()
			}
		}
	}
}

// freeze tells, from a process's state seen over time, when it has been
// stopped for after: once per stop.
type freeze struct {
	after time.Duration
	since time.Time // when the current stop was first seen; zero while running
	fired bool
}

func (f *freeze) observe(stopped bool, now time.Time) (fire bool) {
	if !stopped {
		f.since, f.fired = time.Time{}, false
		return false
	}
	if f.since.IsZero() {
		f.since = now
	}
	if !f.fired && now.Sub(f.since) >= f.after {
		f.fired = true
		return true
	}
	return false
}

// processStopped tells whether process pid is stopped (state T or t).
func processStopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	s := b[i+2]
	return s == 'T' || s == 't'
}
