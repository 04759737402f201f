package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// Part 7: Redis commands per job and idle load, from INFO commandstats
// (calls; Redis 7 counts the commands a script runs as well as the
// EVALSHA). A window is opened around a measured batch; the bench's own
// commands (counted on its pool) and INFO are taken out. Nothing else
// touches Redis meanwhile: every earlier part has stopped its hosts and
// pools.
//
// Per job: a running pool (raw) or host (Berth) takes n no-op jobs, raw
// enqueued from one client, Berth posted to the REST API from 8 clients;
// the window closes when the queue is empty and nothing is in flight. The
// window also holds the pools' background work of those seconds
// (heartbeats, the requeuer), a few commands a second, so well under 0.01
// per job.
//
// Idle: a pool or host that has run for settle with nothing to do, over
// o.idleFor.
func partCommands(ctx context.Context, b *bench) error {
	n := b.opts.commandJobs
	raw, err := b.rawCommands(ctx, n)
	if err != nil {
		return fmt.Errorf("raw per job: %w", err)
	}
	berth, err := b.berthCommands(ctx, n)
	if err != nil {
		return fmt.Errorf("berth per job: %w", err)
	}
	m := &metric{Part: 7, Key: "commands.per_job", Label: "Redis commands per job", Unit: "calls",
		Berth: &figure{Value: float64(berth.Total) / float64(n), Runs: 1, PerRunCount: n},
		Raw:   &figure{Value: float64(raw.Total) / float64(n), Runs: 1, PerRunCount: n}}
	m.setRatio()
	b.add(m)
	b.note("per job, berth (submit over REST + run + statuses): %s", topText(berth.top(20, float64(n))))
	b.note("per job, raw (enqueue + run): %s", topText(raw.top(20, float64(n))))

	rawIdle, err := b.rawIdle(ctx)
	if err != nil {
		return fmt.Errorf("raw idle: %w", err)
	}
	berthIdle, err := b.berthIdle(ctx)
	if err != nil {
		return fmt.Errorf("berth idle: %w", err)
	}
	ri, bi := rawIdle.perSecond(), berthIdle.perSecond()
	im := &metric{Part: 7, Key: "commands.idle", Label: "idle Redis load, 1 host", Unit: "calls/s",
		Berth:     &figure{Value: bi, Seconds: berthIdle.Seconds},
		Raw:       &figure{Value: ri, Seconds: rawIdle.Seconds},
		RatioNote: fmt.Sprintf("%+.1f/s", bi-ri)}
	// "A few commands per second per host" above the raw pool: 5.
	im.judge("<= raw + 5/s", bi-ri <= 5)
	b.add(im)
	b.note("idle, berth (calls/s): %s", topText(berthIdle.top(10, berthIdle.Seconds)))
	b.note("idle, raw (calls/s): %s", topText(rawIdle.top(10, rawIdle.Seconds)))
	b.note("idle target: the sparse-pickup fix may add at most 5 calls/s per host over raw gocraft/work")

	// The same host once it has run a burst: what a wake-up leaves behind
	// (pools, timers) must not cost at idle.
	burstIdle, err := b.berthIdleAfterBurst(ctx, n)
	if err != nil {
		return fmt.Errorf("berth idle after a burst: %w", err)
	}
	bb := burstIdle.perSecond()
	ib := &metric{Part: 7, Key: "commands.idle_after_burst", Label: fmt.Sprintf("idle Redis load, 1 host after a %d-job burst", n), Unit: "calls/s",
		Berth:     &figure{Value: bb, Seconds: burstIdle.Seconds},
		Raw:       &figure{Value: ri, Seconds: rawIdle.Seconds},
		RatioNote: fmt.Sprintf("%+.1f/s", bb-ri)}
	ib.judge("<= raw + 5/s", bb-ri <= 5)
	b.add(ib)
	b.note("idle after a burst, berth (calls/s): %s", topText(burstIdle.top(10, burstIdle.Seconds)))

	// What wake-ups cost while jobs come one at a time: 5 jobs/s, raw
	// enqueue against REST submissions, per job (submission, run and the
	// pool's polling and wake-ups of those seconds).
	rawSparse, berthSparse, jobs, err := b.sparseCommands(ctx)
	if err != nil {
		return fmt.Errorf("commands at 5 jobs/s: %w", err)
	}
	sm := &metric{Part: 7, Key: "commands.sparse_per_job", Label: "Redis commands per job at 5 jobs/s", Unit: "calls",
		Berth: &figure{Value: float64(berthSparse.Total) / float64(jobs), Runs: 1, PerRunCount: jobs},
		Raw:   &figure{Value: float64(rawSparse.Total) / float64(jobs), Runs: 1, PerRunCount: jobs}}
	sm.setRatio()
	b.add(sm)
	b.note("at 5 jobs/s, per job, berth: %s", topText(berthSparse.top(12, float64(jobs))))
	b.note("at 5 jobs/s, per job, raw: %s", topText(rawSparse.top(12, float64(jobs))))

	// The alternative to Berth's wake-ups (gocraft/work's Drain, which
	// waits on busy workers): one gocraft/work pool per worker, so that
	// idle workers could be woken one by one. Its cost at idle:
	perWorker, err := b.rawIdlePerWorker(ctx)
	if err != nil {
		return fmt.Errorf("raw idle, a pool per worker: %w", err)
	}
	pw := perWorker.perSecond()
	alt := &metric{Part: 7, Key: "commands.idle_pool_per_worker", Label: "idle load, raw, 1 pool per worker", Unit: "calls/s",
		Raw: &figure{Value: pw, Seconds: perWorker.Seconds}, RatioNote: fmt.Sprintf("%+.1f/s", pw-ri)}
	b.add(alt)
	b.note("idle, raw with one pool per worker (%d pools of 1; the alternative that would wake idle workers while another runs a long job): %s",
		b.opts.workers, topText(perWorker.top(10, perWorker.Seconds)))
	return nil
}

// rawIdlePerWorker measures the idle load of one gocraft/work pool of one
// worker for each of the bench's workers.
func (b *bench) rawIdlePerWorker(ctx context.Context) (cmdDiff, error) {
	for i := 0; i < b.opts.workers; i++ {
		wp := work.NewWorkerPool(rawContext{}, 1, rawNS("idle-per-worker"), b.subject)
		wp.JobWithOptions("NOOP", work.JobOptions{MaxFails: 1, SkipDead: true}, func(*work.Job) error { return nil })
		wp.Start()
		defer wp.Stop()
	}
	return b.idleWindow(ctx)
}

func topText(xs []nameValue) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%s %s", x.Name, num(x.Value)))
	}
	return strings.Join(parts, ", ")
}

func (d cmdDiff) perSecond() float64 {
	if d.Seconds <= 0 {
		return 0
	}
	return float64(d.Total) / d.Seconds
}

func (b *bench) rawCommands(ctx context.Context, n int) (cmdDiff, error) {
	ns := rawNS("commands")
	var done atomic.Int64
	wp := b.newRawPool(ns, "NOOP", func(*work.Job) error {
		done.Add(1)
		return nil
	})
	wp.Start()
	defer wp.Stop()
	time.Sleep(300 * time.Millisecond)
	w, err := openWindow(b.pool, b.counter)
	if err != nil {
		return cmdDiff{}, err
	}
	e := work.NewEnqueuer(ns, b.subject)
	for i := range n {
		if _, err := e.Enqueue("NOOP", work.Q{"i": i}); err != nil {
			return cmdDiff{}, err
		}
	}
	// The raw namespace's keys are spelled like Berth's (see rawNS).
	if err := b.waitDrained(ctx, store.NewKeys("bench-raw-commands"), "NOOP", 5*time.Millisecond); err != nil {
		return cmdDiff{}, err
	}
	if got := done.Load(); got != int64(n) {
		return cmdDiff{}, fmt.Errorf("%d of %d jobs ran", got, n)
	}
	return w.close()
}

func (b *bench) berthCommands(ctx context.Context, n int) (cmdDiff, error) {
	h, err := b.startHost(ctx, "bench-commands", "NOOP")
	if err != nil {
		return cmdDiff{}, err
	}
	defer h.stop()
	time.Sleep(300 * time.Millisecond)
	w, err := openWindow(b.pool, b.counter)
	if err != nil {
		return cmdDiff{}, err
	}
	ids := make([]string, n)
	if _, _, err := concurrently(ctx, 8, n, func(i int) error {
		st, err := b.api.submit(ctx, h.url, submitBody("NOOP", job.Parameters{"i": i}, 0))
		if err == nil {
			ids[i] = st.ID
		}
		return err
	}); err != nil {
		return cmdDiff{}, err
	}
	if err := b.waitDrained(ctx, h.keys, "NOOP", 5*time.Millisecond); err != nil {
		return cmdDiff{}, err
	}
	d, err := w.close()
	if err != nil {
		return d, err
	}
	if bad, err := b.notSuccess(h.keys, ids); err != nil || bad > 0 {
		b.note("berth commands: %d jobs not Success (%v)", bad, err)
	}
	return d, nil
}

func (b *bench) rawIdle(ctx context.Context) (cmdDiff, error) {
	wp := b.newRawPool(rawNS("idle"), "NOOP", func(*work.Job) error { return nil })
	wp.Start()
	defer wp.Stop()
	return b.idleWindow(ctx)
}

func (b *bench) berthIdle(ctx context.Context) (cmdDiff, error) {
	h, err := b.startHost(ctx, "bench-idle", "NOOP")
	if err != nil {
		return cmdDiff{}, err
	}
	defer h.stop()
	return b.idleWindow(ctx)
}

// berthIdleAfterBurst measures the idle load of a host that has just run
// n NOOP jobs posted from 8 clients.
func (b *bench) berthIdleAfterBurst(ctx context.Context, n int) (cmdDiff, error) {
	h, err := b.startHost(ctx, "bench-idle-burst", "NOOP")
	if err != nil {
		return cmdDiff{}, err
	}
	defer h.stop()
	if _, _, err := concurrently(ctx, 8, n, func(i int) error {
		_, err := b.api.submit(ctx, h.url, submitBody("NOOP", job.Parameters{"i": i}, 0))
		return err
	}); err != nil {
		return cmdDiff{}, err
	}
	if err := b.waitDrained(ctx, h.keys, "NOOP", 10*time.Millisecond); err != nil {
		return cmdDiff{}, err
	}
	return b.idleWindow(ctx)
}

// sparseCommands counts the commands of jobs arriving at 5 a second for
// o.idleFor: raw (a pool, one client enqueueing), then Berth (a host, REST
// submissions). It returns both windows and the jobs of each.
func (b *bench) sparseCommands(ctx context.Context) (cmdDiff, cmdDiff, int, error) {
	jobs := max(1, int(b.opts.sparseRate*b.opts.idleFor.Seconds()))
	ns := rawNS("sparse-commands")
	wp := b.newRawPool(ns, "NOOP", func(*work.Job) error { return nil })
	wp.Start()
	defer wp.Stop()
	e := work.NewEnqueuer(ns, b.subject)
	raw, err := b.pacedWindow(ctx, jobs, func(i int) error {
		_, err := e.Enqueue("NOOP", work.Q{"i": i})
		return err
	}, store.NewKeys("bench-raw-sparse-commands"))
	if err != nil {
		return raw, cmdDiff{}, 0, err
	}
	h, err := b.startHost(ctx, "bench-sparse-commands", "NOOP")
	if err != nil {
		return raw, cmdDiff{}, 0, err
	}
	defer h.stop()
	berth, err := b.pacedWindow(ctx, jobs, func(i int) error {
		_, err := b.api.submit(ctx, h.url, submitBody("NOOP", job.Parameters{"i": i}, 0))
		return err
	}, h.keys)
	return raw, berth, jobs, err
}

// pacedWindow lets the pool settle, then counts the commands of n calls
// of submit at the sparse rate and of their runs.
func (b *bench) pacedWindow(ctx context.Context, n int, submit func(i int) error, keys store.Keys) (cmdDiff, error) {
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return cmdDiff{}, ctx.Err()
	}
	w, err := openWindow(b.pool, b.counter)
	if err != nil {
		return cmdDiff{}, err
	}
	var errs atomic.Int64
	paced(ctx, b.opts.sparseRate, n, 1, func(i int) {
		if submit(i) != nil {
			errs.Add(1)
		}
	})
	if err := b.waitDrained(ctx, keys, "NOOP", 20*time.Millisecond); err != nil {
		return cmdDiff{}, err
	}
	if e := errs.Load(); e > 0 {
		return cmdDiff{}, fmt.Errorf("%d submissions failed", e)
	}
	return w.close()
}

func (b *bench) idleWindow(ctx context.Context) (cmdDiff, error) {
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return cmdDiff{}, ctx.Err()
	}
	w, err := openWindow(b.pool, b.counter)
	if err != nil {
		return cmdDiff{}, err
	}
	select {
	case <-time.After(b.opts.idleFor):
	case <-ctx.Done():
		return cmdDiff{}, ctx.Err()
	}
	return w.close()
}
