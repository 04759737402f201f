package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
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
	// OrphanAfter and SweepEvery tune the sweep for entries no worker
	// runs (see Sweep; defaults DefaultOrphanAfter, DefaultSweepEvery).
	OrphanAfter, SweepEvery time.Duration
	Logger                  hclog.Logger
}

// Pool runs the host's Concurrency workers as gocraft/work worker pools
// ("generations"), and wakes idle ones without gocraft/work's Drain.
//
// One pool, the current generation, has every worker that no running job
// holds; the pools it replaced (retiring generations) keep only workers
// that still run a job, and stop after their last one. Each is a plain
// gocraft/work pool with every job type: its heartbeat, in-progress
// lists, :lock and :lock_info shares and worker observations say what it
// runs, as with one pool, and a host with nothing to run has one pool,
// the one it started with. A retiring generation never starts a job: a
// job one of its workers takes anyway goes back to the head of its queue.
//
// A wake-up restarts the current generation when none of its workers
// runs a job (gocraft/work starts a worker with a fetch), the same pool ID
// again; otherwise it starts a new generation with the workers no job
// holds and retires the current one. None is made while a worker is
// about to fetch anyway, which under steady load is always, unless a job
// started with a backlog behind it (Behind). Drain is never called: it
// returns only after every worker, busy ones included, has seen an empty
// queue, and a worker's "drain asked" flag folds two Drains into one
// answer, so a Drain beside another, or one on a pool stopped meanwhile,
// may never return (issue 15).
type Pool struct {
	opts Options
	log  hclog.Logger
	keys store.Keys
	st   *store.Store // for the commands on gocraft/work's keys

	mu       sync.Mutex
	started  bool
	stopping bool
	cur      *generation
	retiring map[*generation]struct{}
	spare    map[uint][]*generation // stopped generations, by size, started again when one of that size is needed
	running  uint                   // handlers running, in every generation
	wanted   bool                   // a wake-up was asked for and not yet looked at
	deferred bool                   // a wake-up found every worker busy: the next job's end looks again
	// awaitSpare: a wake-up waits for a stopping generation to take it
	// again; its stop looks again.
	awaitSpare bool
	force      bool      // the next wake-up is made even if the generation is awake
	behind     bool      // the next wake-up is made under steady load too: jobs wait (Behind)
	lastBehind time.Time // the latest wake-up made for a backlog
	starts     uint64    // jobs started
	counts     Counts

	bridge *work.WorkerPool // a pool of no worker, listed while the current one restarts
	made   int              // generations built

	kick      chan struct{} // to the waker, capacity 1
	quit      chan struct{}
	wakerDone chan struct{}

	sweepNow    chan struct{} // to the sweeper, capacity 1
	sweeperDone chan struct{}
	suspects    map[suspect]time.Time // the sweeper's own: when each was first seen
	stops       sync.WaitGroup        // retiring generations being stopped
}

// generation is one gocraft/work pool of the host.
type generation struct {
	wp       *work.WorkerPool
	seq      int // order of building: the first of a size is preferred
	size     uint
	running  uint
	retiring bool
	// begun is its latest start (every worker fetches at once, and again
	// 10 ms later), lastEnd its latest job's end (that worker fetches at
	// once, then after 10 ms, 100 ms, 1 s and every 5 s), lastStart its
	// latest job's start.
	begun, lastEnd, lastStart time.Time
	id                        string         // its gocraft/work pool ID
	inflight                  map[string]int // gocraft/work IDs of the jobs its handlers have
}

// A wake-up waits, and looks again after recheck unless a job started
// meanwhile, while a worker of the current generation is about to fetch
// anyway: for freshFor after its start (gocraft/work's first back-off
// step is 10 ms), for endedFor after a job's end (under load jobs end
// every few milliseconds and their workers fetch at once: no wake-up is
// made, none of them disturbed), and for youngFor after a job's start
// (most jobs are short; replacing the generation would make its running
// jobs retiring ones, whose workers it gets back only once idle).
const (
	freshFor = 8 * time.Millisecond
	endedFor = 50 * time.Millisecond
	youngFor = 50 * time.Millisecond
)

// recheck is how long after a wake-up it waited for an awake generation
// it looks again, if no job has started meanwhile.
const recheck = 15 * time.Millisecond

// handBackWake is how long after a job was handed back the pool looks for
// a worker to take it: gocraft/work gives the job's :lock back once the
// handler has returned.
const handBackWake = 5 * time.Millisecond

// handBackTimeout bounds the hand-back of a job to its queue.
const handBackTimeout = 5 * time.Second

// listWait bounds the wait for a started pool's first heartbeat.
const listWait = 100 * time.Millisecond

// noFailLimit makes gocraft/work retry whenever the handler says so.
const noFailLimit = math.MaxInt32

type workContext struct{}

// New builds a pool; Start starts it.
func New(opts Options) *Pool {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.OrphanAfter <= 0 {
		opts.OrphanAfter = DefaultOrphanAfter
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = DefaultSweepEvery
	}
	ns := namespaceOf(opts.Namespace)
	return &Pool{opts: opts, log: opts.Logger, keys: store.NewKeys(ns), st: store.New(opts.Redis, store.Options{Namespace: ns}),
		retiring: map[*generation]struct{}{}, spare: map[uint][]*generation{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}), wakerDone: make(chan struct{}),
		sweepNow: make(chan struct{}, 1), sweeperDone: make(chan struct{})}
}

// namespaceOf returns the store's namespace of a gocraft/work one
// (store.Keys.WorkNamespace, "{<namespace>}").
func namespaceOf(workNamespace string) string {
	return strings.TrimSuffix(strings.TrimPrefix(workNamespace, "{"), "}")
}

// generation returns a stopped generation of size workers: a spare one,
// or a new pool. p.mu is held.
func (p *Pool) generation(size uint) *generation {
	if s := p.spare[size]; len(s) > 0 {
		// The first one built, so that an idle host keeps one pool ID.
		i := 0
		for k, g := range s {
			if g.seq < s[i].seq {
				i = k
			}
		}
		g := s[i]
		p.spare[size] = append(s[:i], s[i+1:]...)
		return g
	}
	p.made++
	g := &generation{seq: p.made, size: size, inflight: map[string]int{}}
	g.wp = p.workerPool(size, func(j *work.Job) error { return p.handle(g, j) })
	g.id = poolIDOf(g.wp)
	return g
}

// workerPool builds a gocraft/work pool of size workers taking every job
// type with handler. Every pool of the host takes every type: a pool's
// requeuers move a due retry or scheduled entry of a type it does not
// take to the dead set.
func (p *Pool) workerPool(size uint, handler func(*work.Job) error) *work.WorkerPool {
	wp := work.NewWorkerPool(workContext{}, size, p.opts.Namespace, p.opts.Redis)
	backoff := func(j *work.Job) int64 {
		d := p.opts.Backoff(j.Fails)
		return max(1, int64(math.Ceil(d.Seconds())))
	}
	for _, t := range p.opts.Types {
		wp.JobWithOptions(t.Name, work.JobOptions{
			MaxFails: noFailLimit, SkipDead: true, MaxConcurrency: t.MaxConcurrency, Backoff: backoff,
		}, handler)
	}
	return wp
}

// begin makes g the current generation, its workers about to fetch; p.mu
// is held.
func (p *Pool) begin(g *generation, now time.Time) {
	g.running, g.retiring = 0, false
	g.begun = now
	p.cur = g
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
	client := work.NewClient(p.opts.Namespace, p.opts.Redis)
	before := map[string]bool{}
	if hb, err := client.WorkerPoolHeartbeats(); err == nil {
		for _, h := range hb {
			before[h.WorkerPoolID] = true
		}
	}
	g := p.generation(p.opts.Concurrency)
	p.begin(g, time.Now())
	g.wp.Start()
	go p.waker()
	go p.sweeper()
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
// A job a worker takes while it stops is handed back to its queue, not
// run. Safe to call twice.
func (p *Pool) Stop() {
	p.mu.Lock()
	if !p.started || p.stopping {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	p.mu.Unlock()
	close(p.quit)
	<-p.wakerDone
	<-p.sweeperDone
	p.mu.Lock()
	cur := p.cur
	cur.retiring = true
	p.mu.Unlock()
	cur.wp.Stop()
	p.stops.Wait()
}

// Counts are what a pool's wake-ups did since it started.
type Counts struct {
	// Restarts of an idle current generation, and Generations started in
	// place of a busy one.
	Restarts, Generations uint64
	// HandedBack counts jobs that retiring generations queued again.
	HandedBack uint64
}

// Counts returns what the pool's wake-ups did so far.
func (p *Pool) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// Wake makes idle workers look at their queues now instead of at the end
// of their back-off (gocraft/work's idle workers sleep up to 5 s between
// polls), also while other workers run long jobs. It never blocks: the
// waker goroutine restarts or replaces the current generation, unless a
// worker of it is about to fetch anyway (within gocraft/work's first
// 10 ms back-off step) or every worker is busy (a job's end looks again).
// Wake-ups asked for while one is being made are folded into the next.
func (p *Pool) Wake() {
	p.mu.Lock()
	if !p.started || p.stopping {
		p.mu.Unlock()
		return
	}
	p.wanted = true
	p.mu.Unlock()
	p.poke()
}

// backlogWake is how many entries left in a queue as a worker took a job
// from it make Behind wake idle workers.
const backlogWake = 8

// behindEvery is the least time between two wake-ups for a backlog.
const behindEvery = 100 * time.Millisecond

// Behind tells the pool that waiting entries were left in the queue of a
// job one of its workers just started. Under steady load no wake-up is
// made (some worker ends a job every few milliseconds and fetches at
// once), so when jobs arrive faster than the workers that chain them can
// take them, the others sleep in gocraft/work's 100 ms and 1 s back-off
// steps while the queue waits. From backlogWake entries, and while at
// least half of the workers are idle, the next wake-up is made anyway, at
// most one per behindEvery: each replaces a generation whose busy workers
// may each fetch once more before they stop, and hand that job back. It
// never blocks.
func (p *Pool) Behind(waiting int) {
	if waiting < backlogWake {
		return
	}
	p.mu.Lock()
	if !p.started || p.stopping || !p.halfIdle() {
		p.mu.Unlock()
		return
	}
	p.wanted, p.behind = true, true
	p.mu.Unlock()
	p.poke()
}

// halfIdle says whether at least half of the workers run no job. p.mu is
// held.
func (p *Pool) halfIdle() bool { return 2*(p.opts.Concurrency-p.running) >= p.opts.Concurrency }

func (p *Pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Pool) waker() {
	defer close(p.wakerDone)
	for {
		select {
		case <-p.quit:
			return
		case <-p.kick:
		}
		p.wakeUp()
	}
}

// wakeUp makes one wake-up, if one is wanted and needed.
func (p *Pool) wakeUp() {
	p.mu.Lock()
	if p.stopping || !p.wanted {
		p.mu.Unlock()
		return
	}
	p.wanted = false
	behind := p.behind
	p.behind = false
	now := time.Now()
	cur := p.cur
	fresh := now.Sub(cur.begun) < freshFor
	if behind && (fresh || now.Sub(p.lastBehind) < behindEvery || !p.halfIdle()) {
		// The workers of a generation begun moments ago are still taking
		// the backlog, or a wake-up for one was made lately (each costs a
		// hand-back per busy worker of the generation it replaces), or
		// the workers got busy meanwhile: a start that still finds a
		// backlog says so again.
		behind = false
	}
	if behind {
		p.lastBehind = now
	}
	switch {
	case p.running >= p.opts.Concurrency:
		// No worker to wake: a job's end looks again (its worker fetches
		// at once if it is in the current generation).
		p.deferred = true
		p.mu.Unlock()
		return
	case !behind && !p.shrunk() && (!p.force && (fresh || now.Sub(cur.lastEnd) < endedFor) ||
		cur.running > 0 && now.Sub(cur.lastStart) < youngFor):
		starts := p.starts
		p.mu.Unlock()
		time.AfterFunc(recheck, func() {
			p.mu.Lock()
			again := p.starts == starts && !p.stopping
			if again {
				p.wanted, p.force = true, true
			}
			p.mu.Unlock()
			if again {
				p.poke()
			}
		})
		return
	}
	p.force = false
	if p.shrunk() && p.stopsSoon(p.opts.Concurrency-p.running) {
		// A retiring generation of the size wanted has run its last job
		// and is stopping: take it once stopped (retire looks again), so
		// that an idle host comes back to the pool it started with.
		p.awaitSpare = true
		p.mu.Unlock()
		return
	}
	cur.retiring = true // a job one of its workers takes meanwhile goes back
	if cur.running == 0 && !p.shrunk() {
		p.counts.Restarts++
		p.mu.Unlock()
		p.restart(cur)
		return
	}
	p.retiring[cur] = struct{}{}
	p.stops.Add(1)
	g := p.generation(p.opts.Concurrency - p.running)
	p.begin(g, now)
	p.counts.Generations++
	p.mu.Unlock()
	before := p.listed()
	g.wp.Start()
	p.waitListed(before)
	go p.retire(cur)
}

// restart stops the idle current generation and starts it again, which
// wakes every worker of it and keeps its pool ID. When it is the only
// pool listed, the bridge, a pool of no worker, is listed meanwhile (GET
// /api/v1/stats answers 500 when no pool is).
func (p *Pool) restart(g *generation) {
	if p.bridge == nil {
		p.bridge = p.workerPool(0, func(j *work.Job) error { return p.handBack(j) })
	}
	before := p.listed()
	bridged := len(before) < 2 // the restarting pool is the only one listed
	if bridged {
		p.bridge.Start()
		p.waitListed(before)
	}
	g.wp.Stop()
	p.mu.Lock()
	p.begin(g, time.Now())
	p.mu.Unlock()
	if !bridged {
		g.wp.Start()
		return
	}
	before = p.listed()
	g.wp.Start()
	p.waitListed(before)
	p.bridge.Stop()
}

// listed returns the pool IDs worker_pools lists (nil if Redis did not
// answer).
func (p *Pool) listed() map[string]bool {
	ctx, cancel := context.WithTimeout(context.Background(), listWait)
	defer cancel()
	ids, err := p.st.WorkerPoolIDs(ctx)
	if err != nil {
		return nil
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// waitListed waits, for at most listWait, until worker_pools lists a pool
// that before did not: gocraft/work writes a started pool's first
// heartbeat from a goroutine. (A pool another host starts meanwhile ends
// the wait as well; pools that go away do not hold it.)
func (p *Pool) waitListed(before map[string]bool) {
	if before == nil {
		return
	}
	for deadline := time.Now().Add(listWait); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
		for id := range p.listed() {
			if !before[id] {
				return
			}
		}
	}
}

// shrunk says whether the current generation is idle and smaller than
// the workers no job holds: the jobs of a retiring generation have ended
// since it started. Its replacement has them all (a current generation
// with running jobs is left as it is: replacing it would make its jobs
// retiring ones, and their ends more replacements). p.mu is held.
func (p *Pool) shrunk() bool {
	return p.cur.running == 0 && p.cur.size < p.opts.Concurrency-p.running
}

// retire stops a generation that is no longer current and keeps it for
// reuse once its last job has returned.
func (p *Pool) retire(g *generation) {
	defer p.stops.Done()
	g.wp.Stop()
	p.mu.Lock()
	delete(p.retiring, g)
	p.spare[g.size] = append(p.spare[g.size], g)
	again := p.awaitSpare && !p.stopping
	if again {
		p.awaitSpare, p.wanted = false, true
	}
	p.mu.Unlock()
	if again {
		p.poke()
	}
}

// stopsSoon says whether a retiring generation of size workers, built
// before every spare one of that size, runs no job any more. p.mu is held.
func (p *Pool) stopsSoon(size uint) bool {
	first := math.MaxInt
	for _, g := range p.spare[size] {
		first = min(first, g.seq)
	}
	for g := range p.retiring {
		if g.size == size && g.running == 0 && g.seq < first {
			return true
		}
	}
	return false
}

// handle runs a job a worker of g took.
func (p *Pool) handle(g *generation, j *work.Job) error {
	p.mu.Lock()
	g.inflight[j.ID]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if g.inflight[j.ID]--; g.inflight[j.ID] <= 0 {
			delete(g.inflight, j.ID)
		}
		p.mu.Unlock()
	}()
	p.mu.Lock()
	if g.retiring {
		// Its worker slot went to the current generation: the job goes
		// back to the head of its queue, for a worker of that one.
		p.counts.HandedBack++
		p.mu.Unlock()
		return p.handBack(j)
	}
	g.running++
	p.running++
	p.starts++
	g.lastStart = time.Now()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		g.running--
		p.running--
		g.lastEnd = time.Now()
		// A wake-up that found every worker busy looks again; so does an
		// idle current generation that can now have more workers.
		again := !p.stopping && (p.deferred || p.shrunk())
		if again {
			p.deferred, p.wanted = false, true
		}
		p.mu.Unlock()
		if again {
			p.poke()
		}
	}()
	return p.opts.Handler(Job{Name: j.Name, ID: store.JobIDOf(j.ID, j.Args), EnqueuedAt: j.EnqueuedAt, Unique: j.Unique, Fails: j.Fails})
}

// handBack queues a job a retiring generation took again, at the head of
// its queue (gocraft/work takes the oldest entry from the right), as
// gocraft/work spells an entry. An error makes gocraft/work queue it again
// after Backoff instead.
func (p *Pool) handBack(j *work.Job) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("queue: hand back %s: %w", j.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), handBackTimeout)
	defer cancel()
	if err := p.st.HandBack(ctx, j.Name, raw); err != nil {
		p.log.Warn("a retiring worker pool could not hand a job back to its queue; gocraft/work queues it again after its back-off",
			"job_id", j.ID, "error", err)
		return fmt.Errorf("queue: hand back %s: %w", j.ID, err)
	}
	time.AfterFunc(handBackWake, p.Wake)
	return nil
}

// Heartbeats lists the worker pools of namespace, healthy when their last
// heartbeat is younger than staleAfter, but for pools of no worker.
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
		// A pool of no worker is a host's bridge while its pool restarts
		// (see Pool.restart): the host's own pool is listed besides.
		if h.HeartbeatAt == 0 || h.Concurrency == 0 {
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
