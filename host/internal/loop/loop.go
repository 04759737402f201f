package loop

import (
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/host/internal/clock"
)

// Func is one run. It returns how long to wait before the next run (a
// Kick cuts the wait short).
type Func func(ctx context.Context) time.Duration

// Options configure a Loop.
type Options struct {
	// Run is what the loop runs.
	Run Func
	// First is the wait before the first run (0: at once).
	First time.Duration
	// Clock makes the timers (default the real clock).
	Clock clock.Clock
}

// Loop is one background goroutine.
type Loop struct {
	opts Options
	kick chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Loop; Start starts it.
func New(opts Options) *Loop {
	opts.Clock = clock.Or(opts.Clock)
	return &Loop{opts: opts, kick: make(chan struct{}, 1)}
}

// Start runs the loop in a goroutine. The runs' context keeps ctx's
// values but ends only at Stop, so that a component outlives the context
// it was started with (a start-up deadline, say). A second Start before
// Stop does nothing.
func (l *Loop) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return
	}
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		l.run(ctx)
	}(l.done)
}

// Stop ends the runs' context and waits for the loop to return. Safe
// twice, and before Start; a Start after Stop starts the loop again.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Kick makes the loop run now, or right after the run in progress. Kicks
// that arrive meanwhile are folded into one.
func (l *Loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Loop) run(ctx context.Context) {
	t := l.opts.Clock.NewTimer(l.opts.First)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-l.kick:
		}
		wait := l.opts.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if !t.Stop() {
			select {
			case <-t.C():
			default:
			}
		}
		t.Reset(max(wait, 0))
	}
}
