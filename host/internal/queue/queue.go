package queue

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/job"
)

// Job is a job a worker took from its queue.
type Job struct {
	Name string
	ID   string
	Args map[string]any
	// Fails is how many earlier attempts failed.
	Fails int64
}

// Handler runs a job. A non-nil error retries it after Backoff.
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
	// Backoff is the wait before the next attempt of a job that has
	// failed `fails` times (gocraft/work counts in whole seconds).
	Backoff func(id string, fails int64) time.Duration
	Logger  hclog.Logger
}

// Pool is a gocraft/work worker pool.
type Pool struct {
	wp  *work.WorkerPool
	log hclog.Logger

	mu       sync.Mutex
	started  bool
	stopping bool
	draining atomic.Bool
}

// noFailLimit makes gocraft/work retry whenever the handler says so.
const noFailLimit = math.MaxInt32

type workContext struct{}

// New builds a pool; Start starts it.
func New(opts Options) *Pool {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	p := &Pool{wp: work.NewWorkerPool(workContext{}, opts.Concurrency, opts.Namespace, opts.Redis), log: opts.Logger}
	backoff := func(j *work.Job) int64 {
		d := opts.Backoff(j.ID, j.Fails)
		return max(1, int64(math.Ceil(d.Seconds())))
	}
	for _, t := range opts.Types {
		p.wp.JobWithOptions(t.Name, work.JobOptions{
			MaxFails: noFailLimit, SkipDead: true, MaxConcurrency: t.MaxConcurrency, Backoff: backoff,
		}, func(j *work.Job) error {
			return opts.Handler(Job{Name: j.Name, ID: j.ID, Args: j.Args, Fails: j.Fails})
		})
	}
	return p
}

// Start starts the workers. Safe to call twice.
func (p *Pool) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopping {
		return
	}
	p.started = true
	p.wp.Start()
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
	// it a moment; past that, the waiting goroutines are abandoned (a
	// handful at most, and only when the host stops mid-job).
	for deadline := time.Now().Add(time.Second); p.draining.Load() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	p.wp.Stop()
}

// Wake makes idle workers look at their queues now instead of at the end
// of their back-off (gocraft/work's idle workers sleep up to 5 s between
// polls). It uses gocraft/work's Drain, which wakes the idle workers at
// once but returns only when every worker has seen an empty queue, so
// after a busy one's current job. At most one wake-up runs at a time (more
// would pile goroutines up on busy workers); a call while one runs is
// dropped. So a job queued while another wake-up waits on a long job may
// still wait for a worker's back-off.
func (p *Pool) Wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.stopping || !p.draining.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.draining.Store(false)
		p.wp.Drain()
	}()
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
