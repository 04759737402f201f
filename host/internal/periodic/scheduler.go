package periodic

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/clock"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/loop"
	"github.com/berth-dev/berth/host/internal/store"
)

// Policies lists the active periodic policies (the store).
type Policies interface {
	Policies(ctx context.Context) ([]store.Policy, error)
}

// Executions creates the execution of a policy at a fire time, once across
// every host (the lifecycle owner).
type Executions interface {
	CreateExecution(ctx context.Context, policy *job.Stats, t int64) (store.ExecutionOutcome, error)
}

// Options configure a Scheduler.
type Options struct {
	Policies   Policies
	Executions Executions
	// Horizon is how far ahead executions are created (default 30s).
	Horizon time.Duration
	// Every is the time between passes (default Horizon/3).
	Every time.Duration
	// Misfire is how far back a fire time missed while every host was
	// down still gets its execution (default 1m); older ones are skipped.
	Misfire time.Duration
	// MaxPerPass bounds the executions one policy gets per pass (default
	// 1000), for specs that fire every second.
	MaxPerPass int
	Logger     hclog.Logger
	Clock      clock.Clock
}

// Scheduler creates the executions of periodic policies.
type Scheduler struct {
	opts Options
	loop *loop.Loop
}

// New returns a Scheduler; Start starts it.
func New(opts Options) *Scheduler {
	if opts.Horizon <= 0 {
		opts.Horizon = 30 * time.Second
	}
	if opts.Every <= 0 {
		opts.Every = opts.Horizon / 3
	}
	if opts.Misfire <= 0 {
		opts.Misfire = time.Minute
	}
	if opts.MaxPerPass <= 0 {
		opts.MaxPerPass = 1000
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	opts.Clock = clock.Or(opts.Clock)
	s := &Scheduler{opts: opts}
	s.loop = loop.New(loop.Options{Clock: opts.Clock, Run: func(ctx context.Context) time.Duration {
		s.Pass(ctx)
		return s.opts.Every
	}})
	return s
}

// Start runs passes until Stop.
func (s *Scheduler) Start(ctx context.Context) { s.loop.Start(ctx) }

// Stop stops the scheduler and waits for it. Safe twice.
func (s *Scheduler) Stop() { s.loop.Stop() }

// Kick runs a pass now (a policy was just created).
func (s *Scheduler) Kick() { s.loop.Kick() }

// Pass creates the executions due within the horizon of every active
// policy; it returns how many this host created.
func (s *Scheduler) Pass(ctx context.Context) int {
	policies, err := s.opts.Policies.Policies(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.opts.Logger.Warn("cannot read the periodic policies", "error", err)
		}
		return 0
	}
	now := s.opts.Clock.Now().UTC()
	until := now.Add(s.opts.Horizon)
	created := 0
	for _, p := range policies {
		sched, err := Parse(p.Stats.CronSpec)
		if err != nil {
			s.opts.Logger.Error("a periodic policy has a bad cron spec; it never fires", "policy", p.Stats.ID, "error", err)
			continue
		}
		// Fire times after the policy's creation and the latest one done,
		// within the misfire window.
		from := now.Add(-s.opts.Misfire)
		for _, after := range []int64{p.LastFire, p.Stats.EnqueueTime - 1} {
			if t := time.Unix(after, 0).UTC(); after > 0 && t.After(from) {
				from = t
			}
		}
		for i, t := 0, sched.Next(from); !t.IsZero() && !t.After(until) && i < s.opts.MaxPerPass; i, t = i+1, sched.Next(t) {
			out, err := s.opts.Executions.CreateExecution(ctx, p.Stats, t.Unix())
			if err != nil {
				s.opts.Logger.Warn("cannot create a periodic execution", "policy", p.Stats.ID, "at", t, "error", err)
				break
			}
			if out == store.PolicyInactive {
				break
			}
			if out == store.ExecutionCreated {
				created++
			}
		}
	}
	return created
}
