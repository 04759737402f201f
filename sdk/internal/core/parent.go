package core

import (
	"context"
	"os"
	"time"
)

// watchParent calls gone once the process's parent is no longer ppid (the
// parent died and the process was re-parented). The host also sets a
// parent-death signal on the plugin; this covers the cases that signal
// misses (a plugin started by something else, or a signal lost in a race
// at start-up).
func watchParent(ctx context.Context, ppid int, every time.Duration, gone func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != ppid {
				gone()
				return
			}
		}
	}
}
