package reaper

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/clock"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/loop"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
)

// Lifecycle fails the running jobs that show no progress and recovers
// those whose lease expired (jobs.Controller).
type Lifecycle interface {
	FailStale(ctx context.Context, maxSilence time.Duration) (int, error)
	RecoverLeases(ctx context.Context) (int, error)
}

// Options configure a Reaper.
type Options struct {
	Store     *store.Store
	Lifecycle Lifecycle
	// Interval is the time between passes (default 1m).
	Interval time.Duration
	// MaxJobDuration: a running job without progress (check-in or start)
	// for longer is marked Error (default 24h).
	MaxJobDuration time.Duration
	// DeadAfter: a worker pool whose heartbeat is older is dead (default
	// 30s; gocraft/work beats every 5s).
	DeadAfter time.Duration
	// HookScan is how many jobs a pass looks at for lagging hooks
	// (default 1000).
	HookScan int
	// IndexPrune is how many listing index entries a pass looks at for
	// expired stats (default 10000).
	IndexPrune int
	// Holder names this host in the lock.
	Holder string
	Logger hclog.Logger
	Clock  clock.Clock
}

// Reaper is one host's reaper.
type Reaper struct {
	opts Options
	log  hclog.Logger
	loop *loop.Loop
}

// New returns a Reaper; Start starts it.
func New(opts Options) *Reaper {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.MaxJobDuration <= 0 {
		opts.MaxJobDuration = 24 * time.Hour
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = 30 * time.Second
	}
	if opts.HookScan <= 0 {
		opts.HookScan = 1000
	}
	if opts.IndexPrune <= 0 {
		opts.IndexPrune = 10000
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Holder == "" {
		opts.Holder = job.NewID()
	}
	opts.Clock = clock.Or(opts.Clock)
	r := &Reaper{opts: opts, log: opts.Logger}
	r.loop = loop.New(loop.Options{Clock: opts.Clock, First: opts.Interval, Run: r.tick})
	return r
}

// Start runs passes, one per Interval, until Stop.
func (r *Reaper) Start(ctx context.Context) { r.loop.Start(ctx) }

// Stop stops the reaper and waits for it. Safe twice.
func (r *Reaper) Stop() { r.loop.Stop() }

// tick takes the lock and, with it, runs a pass.
func (r *Reaper) tick(ctx context.Context) time.Duration {
	ok, err := r.opts.Store.TakeReaperLock(ctx, r.opts.Holder, r.opts.Interval*9/10)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			r.log.Warn("cannot take the reaper lock", "error", err)
		}
	case ok:
		r.Pass(ctx)
	}
	return r.opts.Interval
}

// Result is what a pass did.
type Result struct {
	DeadPools, Requeued, Recovered, Stale, Refired, Pruned int
}

// Pass runs one pass now (without the lock; Start takes it).
func (r *Reaper) Pass(ctx context.Context) Result {
	var res Result
	r.reapPools(ctx, &res)
	var err error
	if res.Recovered, err = r.opts.Lifecycle.RecoverLeases(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("cannot look for running jobs whose lease expired", "error", err)
	}
	if res.Stale, err = r.opts.Lifecycle.FailStale(ctx, r.opts.MaxJobDuration); err != nil && ctx.Err() == nil {
		r.log.Warn("cannot look for stale running jobs", "error", err)
	}
	if res.Refired, _, err = r.opts.Store.RefireHooks(ctx, r.opts.HookScan); err != nil && ctx.Err() == nil {
		r.log.Warn("cannot scan for lagging hooks", "error", err)
	}
	if res.Pruned, err = r.opts.Store.PruneIndex(ctx, r.opts.IndexPrune); err != nil && ctx.Err() == nil {
		r.log.Warn("cannot prune the listing indices", "error", err)
	}
	if res != (Result{}) {
		r.log.Info("reaper pass", "dead_pools", res.DeadPools, "requeued", res.Requeued, "lease_expired", res.Recovered, "stale_jobs", res.Stale,
			"hooks_refired", res.Refired, "index_pruned", res.Pruned)
	}
	return res
}

func (r *Reaper) reapPools(ctx context.Context, res *Result) {
	st := r.opts.Store
	pools, err := queue.Heartbeats(ctx, st.Pool(), st.Keys().WorkNamespace(), r.opts.DeadAfter, r.opts.Clock.Now())
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("cannot read worker pool heartbeats", "error", err)
		}
		return
	}
	var names []string
	for _, p := range pools {
		if p.Status != job.PoolDead {
			continue
		}
		if names == nil {
			if names, err = st.KnownJobs(ctx); err != nil {
				r.log.Warn("cannot read the job names", "error", err)
				return
			}
		}
		moved, err := st.ReapPool(ctx, p.WorkerPoolID, names)
		if err != nil {
			r.log.Warn("cannot reap a dead worker pool", "pool", p.WorkerPoolID, "error", err)
			continue
		}
		res.DeadPools++
		res.Requeued += moved
		r.log.Warn("a worker pool stopped beating; its jobs are queued again", "pool", p.WorkerPoolID,
			"last_heartbeat", time.Unix(p.HeartbeatAt, 0).UTC(), "jobs", moved)
	}
}

// String describes a result.
func (r Result) String() string {
	return fmt.Sprintf("dead pools %d, requeued %d, lease expired %d, stale %d, hooks re-fired %d, index entries pruned %d",
		r.DeadPools, r.Requeued, r.Recovered, r.Stale, r.Refired, r.Pruned)
}
