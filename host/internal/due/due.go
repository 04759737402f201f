package due

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/clock"
	"github.com/berth-dev/berth/host/internal/loop"
)

// Store moves due entries (store.Store).
type Store interface {
	MoveDue(ctx context.Context, names []string, limit int) (moved, dropped int, next int64, err error)
}

// Options configure a Mover.
type Options struct {
	Store Store
	// Names are the job names whose entries this host moves.
	Names []string
	// MaxWait bounds a sleep between moves (default 5s). Every job
	// scheduled through Berth announces its run time on the timer channel,
	// so this matters only for lost messages and for gocraft/work's own
	// retry writes, which gocraft/work's requeuer also moves once a second.
	MaxWait time.Duration
	// Batch bounds the entries moved per set and round trip (default 1000).
	Batch  int
	Logger hclog.Logger
	Clock  clock.Clock
}

// Mover is one host's mover of due jobs.
type Mover struct {
	opts Options
	loop *loop.Loop
}

// New returns a Mover; Start starts it.
func New(opts Options) *Mover {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	opts.Clock = clock.Or(opts.Clock)
	m := &Mover{opts: opts}
	m.loop = loop.New(loop.Options{Clock: opts.Clock, Run: m.moveDue})
	return m
}

// Start runs the mover until Stop.
func (m *Mover) Start(ctx context.Context) { m.loop.Start(ctx) }

// Stop stops the mover and waits for it. Safe twice.
func (m *Mover) Stop() { m.loop.Stop() }

// OnTimer handles a message of the timer channel (the run time of a newly
// scheduled job): the mover looks again at once, so that a job due sooner
// than its current wait is not late.
func (m *Mover) OnTimer(string) { m.Kick() }

// Kick makes the mover look at the sets now.
func (m *Mover) Kick() { m.loop.Kick() }

// moveDue moves what is due and returns how long to sleep.
func (m *Mover) moveDue(ctx context.Context) time.Duration {
	for {
		moved, dropped, next, err := m.opts.Store.MoveDue(ctx, m.opts.Names, m.opts.Batch)
		if err != nil {
			if ctx.Err() == nil {
				m.opts.Logger.Warn("cannot move due jobs", "error", err)
			}
			return m.opts.MaxWait
		}
		if dropped > 0 {
			m.opts.Logger.Error("dropped malformed entries from the scheduled or retry set", "count", dropped)
		}
		if next == 0 {
			return m.opts.MaxWait
		}
		at := time.Unix(next, 0)
		if !at.After(m.opts.Clock.Now()) && moved > 0 {
			continue // a full batch, and more are due
		}
		// Scores are whole seconds: a job is due at the start of its
		// second.
		return min(max(at.Sub(m.opts.Clock.Now()), 0), m.opts.MaxWait)
	}
}
