package queue

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// Job is a job a worker took from its queue.
type Job struct {
	Name string
	ID   string
	// EnqueuedAt is the entry's submission time (unix s).
	EnqueuedAt int64
	Unique     bool
	// Fails is how many earlier attempts failed (as the entry says).
	Fails int64
}

// Handler runs a job. It returns nil once the job is handled, whatever
// its outcome: the lifecycle owner records retries itself. A non-nil
// error means the job could not be handled at all (Redis was unreachable
// before its run started): gocraft/work queues the entry again after
// Backoff.
type Handler func(j Job) error

// Type is a job type the pool takes.
type Type struct {
	Name string
	// MaxConcurrency bounds the runs at once across every pool on this
	// Redis namespace; 0 is no bound.
	MaxConcurrency uint
}

// Options configure a Pool.
type Options struct {
	Redis *redis.Pool
	// Namespace is gocraft/work's namespace (store.Keys.WorkNamespace).
	Namespace   string
	Concurrency uint
	Types       []Type
	Handler     Handler
	// Backoff is the wait before gocraft/work queues again an entry whose
	// handler could not handle it (gocraft/work counts in whole seconds).
	Backoff func(fails int64) time.Duration
	Logger  hclog.Logger
}

// Pool is a gocraft/work worker pool.
type Pool struct {
	wp        *work.WorkerPool
	log       hclog.Logger
	redis     *redis.Pool
	namespace string

	mu        sync.Mutex
	started   bool
	stopping  bool
	inflight  int       // wake-ups (Drain calls) running: 0 or 1
	lastStart time.Time // of the latest wake-up
	pending   bool      // a wake-up was asked for while one ran
	trailing  bool      // a trailing wake-up is scheduled
}

// Wake-ups start at most one per minGap, and never beside one another.
const (
	minGap = 5 * time.Millisecond
)

// noFailLimit makes gocraft/work retry whenever the handler says so.
const noFailLimit = math.MaxInt32

type workContext struct{}

// New builds a pool; Start starts it.
func New(opts Options) *Pool {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	p := &Pool{wp: work.NewWorkerPool(workContext{}, opts.Concurrency, opts.Namespace, opts.Redis), log: opts.Logger,
		redis: opts.Redis, namespace: opts.Namespace}
	backoff := func(j *work.Job) int64 {
		d := opts.Backoff(j.Fails)
		return max(1, int64(math.Ceil(d.Seconds())))
	}
	for _, t := range opts.Types {
		p.wp.JobWithOptions(t.Name, work.JobOptions{
			MaxFails: noFailLimit, SkipDead: true, MaxConcurrency: t.MaxConcurrency, Backoff: backoff,
		}, func(j *work.Job) error {
			return opts.Handler(Job{Name: j.Name, ID: store.JobIDOf(j.ID, j.Args), EnqueuedAt: j.EnqueuedAt, Unique: j.Unique, Fails: j.Fails})
		})
	}
	return p
}

// Start starts the workers and returns once the pool's first heartbeat
// is in Redis (gocraft/work writes it from a goroutine), so that
// GET /api/v1/stats lists the pool as soon as the host says it is ready.
// Safe to call twice.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.started || p.stopping {
		p.mu.Unlock()
		return nil
	}
	p.started = true
	client := work.NewClient(p.namespace, p.redis)
	before := map[string]bool{}
	if hb, err := client.WorkerPoolHeartbeats(); err == nil {
		for _, h := range hb {
			before[h.WorkerPoolID] = true
		}
	}
	p.wp.Start()
	p.mu.Unlock()
	for {
		hb, err := client.WorkerPoolHeartbeats()
		if err == nil {
			for _, h := range hb {
				if !before[h.WorkerPoolID] && h.HeartbeatAt > 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue: the worker pool's first heartbeat: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop stops taking jobs and returns once the running ones have returned.
// Safe to call twice.
func (p *Pool) Stop() {
	p.mu.Lock()
	if !p.started || p.stopping {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	p.mu.Unlock()
	// A wake-up in flight ends when every worker has seen an empty queue.
	// A worker busy with a long job sees it only after that job, and once
	// stopped it never does: gocraft/work's Drain then waits forever. Give
	// them a moment; past that, its goroutine is abandoned (one at most,
	// and only when the host stops mid-job).
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		n := p.inflight
		p.mu.Unlock()
		if n == 0 {
			break
		}
	}
	p.wp.Stop()
}

// Wake makes idle workers look at their queues now instead of at the end
// of their back-off (gocraft/work's idle workers sleep up to 5 s between
// polls). It uses gocraft/work's Drain, the only way to interrupt that
// sleep: Drain wakes the idle workers at once but returns only when every
// worker has seen an empty queue, so after a busy worker's current job.
// Wake-ups asked for while one runs are folded into one that follows it.
// Two never run at once: a gocraft/work worker keeps one "drain asked"
// flag, not a count, so of two Drains waiting on one busy worker only one
// would ever return.
func (p *Pool) Wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.stopping {
		return
	}
	now := time.Now()
	switch {
	case p.inflight > 0:
		p.pending = true
	case now.Sub(p.lastStart) < minGap:
		p.pending = true
		p.scheduleTrailing(minGap - now.Sub(p.lastStart))
	default:
		p.startDrain(now)
	}
}

// startDrain runs one wake-up; p.mu is held.
func (p *Pool) startDrain(now time.Time) {
	p.inflight++
	p.lastStart = now
	p.pending = false
	go func() {
		p.wp.Drain()
		p.mu.Lock()
		p.inflight--
		again := p.pending
		p.mu.Unlock()
		if again {
			p.Wake()
		}
	}()
}

// scheduleTrailing makes sure a pending wake-up runs after d; p.mu is held.
func (p *Pool) scheduleTrailing(d time.Duration) {
	if p.trailing {
		return
	}
	p.trailing = true
	time.AfterFunc(d, func() {
		p.mu.Lock()
		p.trailing = false
		again := p.pending
		p.mu.Unlock()
		if again {
			p.Wake()
		}
	})
}

// Heartbeats lists the worker pools of namespace, healthy when their last
// heartbeat is younger than staleAfter.
func Heartbeats(ctx context.Context, pool *redis.Pool, namespace string, staleAfter time.Duration, now time.Time) ([]*job.WorkerPool, error) {
	type result struct {
		hb  []*work.WorkerPoolHeartbeat
		err error
	}
	ch := make(chan result, 1)
	go func() {
		hb, err := work.NewClient(namespace, pool).WorkerPoolHeartbeats()
		ch <- result{hb, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	var out []*job.WorkerPool
	for _, h := range r.hb {
		if h.HeartbeatAt == 0 {
			continue
		}
		st := job.PoolHealthy
		if now.Sub(time.Unix(h.HeartbeatAt, 0)) > staleAfter {
			st = job.PoolDead
		}
		out = append(out, &job.WorkerPool{
			WorkerPoolID: h.WorkerPoolID, StartedAt: h.StartedAt, HeartbeatAt: h.HeartbeatAt,
			JobNames: h.JobNames, Concurrency: h.Concurrency, Status: st,
		})
	}
	return out, nil
}
