package requeue

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/bg"
	"github.com/berth-dev/berth/host/internal/store"
)

// Options configure a Requeuer.
type Options struct {
	Store *store.Store
	// MaxWait bounds a sleep between moves (default 5s). Every job
	// scheduled through Berth announces its run time on the timer channel,
	// so this matters only for lost messages and for gocraft/work's own
	// retry writes, which gocraft/work's requeuer also moves once a second.
	MaxWait time.Duration
	// Batch bounds the entries moved per set and round trip (default 1000).
	Batch  int
	Logger hclog.Logger
}

// Requeuer is one host's mover of due jobs.
type Requeuer struct {
	opts Options
	wake chan struct{}
	loop bg.Loop
}

// New returns a Requeuer; Start starts it.
func New(opts Options) *Requeuer {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Requeuer{opts: opts, wake: make(chan struct{}, 1)}
}

// Start runs the requeuer until Stop.
func (r *Requeuer) Start(ctx context.Context) { r.loop.Start(ctx, r.run) }

// Stop stops the requeuer and waits for it. Safe twice.
func (r *Requeuer) Stop() { r.loop.Stop() }

// OnTimer handles a message of the timer channel (the run time of a newly
// scheduled job): the requeuer looks again at once, so that a job due
// sooner than its current wait is not late.
func (r *Requeuer) OnTimer(string) { r.Kick() }

// Kick makes the requeuer look at the sets now.
func (r *Requeuer) Kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Requeuer) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
		wait := r.moveDue(ctx)
		t.Stop()
		select {
		case <-t.C:
		default:
		}
		t.Reset(wait)
	}
}

// moveDue moves what is due and returns how long to sleep.
func (r *Requeuer) moveDue(ctx context.Context) time.Duration {
	for {
		moved, dropped, next, err := r.opts.Store.MoveDue(ctx, r.opts.Batch)
		if err != nil {
			if ctx.Err() == nil {
				r.opts.Logger.Warn("cannot move due jobs", "error", err)
			}
			return r.opts.MaxWait
		}
		if dropped > 0 {
			r.opts.Logger.Error("dropped malformed entries from the scheduled or retry set", "count", dropped)
		}
		if moved < r.opts.Batch {
			if next == 0 {
				return r.opts.MaxWait
			}
			// Scores are whole seconds: a job is due at the start of its
			// second.
			return min(max(time.Until(time.Unix(next, 0)), 0), r.opts.MaxWait)
		}
		// A full batch: more may be due.
	}
}
