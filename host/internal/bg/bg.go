// Package bg runs the background goroutine of a host component (the
// requeuer, the periodic scheduler, the reaper): started once, stopped by
// ending its context and waiting for it to return.
package bg

import (
	"context"
	"sync"
)

// Loop is one background goroutine. The zero value is ready to use.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs fn in a goroutine. fn's context keeps ctx's values but ends
// only at Stop, so that a component outlives the context it was started
// with (a start-up deadline, say). A second Start does nothing.
func (l *Loop) Start(ctx context.Context, fn func(ctx context.Context)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return
	}
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		fn(ctx)
	}(l.done)
}

// Stop ends fn's context and waits for fn to return. Safe twice, and
// before Start.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
