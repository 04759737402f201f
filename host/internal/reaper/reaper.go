package reaper

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/bg"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
)

// Options configure a Reaper.
type Options struct {
	Store *store.Store
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
	// Holder names this host in the lock.
	Holder string
	Logger hclog.Logger
	// OnStale is told about a job marked Error for lack of progress, so
	// that a host still running it can end it.
	OnStale func(id string)
}

// Reaper is one host's reaper.
type Reaper struct {
	opts Options
	log  hclog.Logger
	loop bg.Loop
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
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Holder == "" {
		opts.Holder = job.NewID()
	}
	return &Reaper{opts: opts, log: opts.Logger}
}

// Start runs passes until Stop.
func (r *Reaper) Start(ctx context.Context) {
	r.loop.Start(ctx, func(ctx context.Context) {
		t := time.NewTicker(r.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ok, err := r.opts.Store.TakeReaperLock(ctx, r.opts.Holder, r.opts.Interval*9/10)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("cannot take the reaper lock", "error", err)
				}
				continue
			}
			if ok {
				r.Pass(ctx)
			}
		}
	})
}

// Stop stops the reaper and waits for it. Safe twice.
func (r *Reaper) Stop() { r.loop.Stop() }

// Result is what a pass did.
type Result struct {
	DeadPools, Requeued, Stale, Refired int
}

// Pass runs one pass now (without the lock; Start takes it).
func (r *Reaper) Pass(ctx context.Context) Result {
	var res Result
	r.reapPools(ctx, &res)
	r.failStale(ctx, &res)
	n, _, err := r.opts.Store.RefireHooks(ctx, r.opts.HookScan)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("cannot scan for lagging hooks", "error", err)
	}
	res.Refired = n
	if res != (Result{}) {
		r.log.Info("reaper pass", "dead_pools", res.DeadPools, "requeued", res.Requeued, "stale_jobs", res.Stale, "hooks_refired", res.Refired)
	}
	return res
}

func (r *Reaper) reapPools(ctx context.Context, res *Result) {
	st := r.opts.Store
	pools, err := queue.Heartbeats(ctx, st.Pool(), st.Keys().WorkNamespace(), r.opts.DeadAfter, time.Now())
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

func (r *Reaper) failStale(ctx context.Context, res *Result) {
	st := r.opts.Store
	before := time.Now().Add(-r.opts.MaxJobDuration).Unix()
	ids, err := st.StaleRunning(ctx, before, 1000)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("cannot list stale running jobs", "error", err)
		}
		return
	}
	for _, id := range ids {
		s, err := st.Get(ctx, id)
		if err != nil {
			_ = st.ForgetRunning(ctx, id)
			continue
		}
		if s.Status != job.Running || s.UpdateTime >= before {
			continue
		}
		out, err := st.Move(ctx, id, s.Revision, job.Error, store.Fields{store.FieldDieAt: strconv.FormatInt(st.Now(), 10)})
		if err != nil || out.Outcome != store.Moved {
			continue
		}
		res.Stale++
		r.log.Warn("a running job showed no progress for longer than reaper.max_job_duration; it is marked Error",
			"job_id", id, "last_progress", time.Unix(s.UpdateTime, 0).UTC(), "max_job_duration", r.opts.MaxJobDuration)
		if r.opts.OnStale != nil {
			r.opts.OnStale(id)
		}
	}
}

// String describes a result.
func (r Result) String() string {
	return fmt.Sprintf("dead pools %d, requeued %d, stale %d, hooks re-fired %d", r.DeadPools, r.Requeued, r.Stale, r.Refired)
}
