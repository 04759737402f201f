package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
)

// How pickup and lateness are measured
//
// Raw: the handler runs in the bench process and records time.Now() as
// it starts. Berth: the bench plugin's STAMP job sends a UDP datagram
// with its wall-clock time as its Run starts (see plugin/main.go); the
// datagram touches neither Redis nor the host. Pickup is that start minus
// the time the bench issued the submission: just before Enqueue (raw) or
// just before the POST (Berth, so Berth's figure includes the REST call,
// the Validate RPC and the Create script). Lateness is the start minus
// run_at as the system returned it (gocraft/work's ScheduledJob.RunAt,
// Berth's stats.run_at: both whole unix seconds).

// settle is how long a pool stays idle before a sparse or scheduled
// measurement, so that its idle workers are in their longest back-off as
// on a quiet queue (gocraft/work reaches 5 s sleeps after about 1.1 s).
const settle = 2 * time.Second

// sample is one submitted job.
type sample struct {
	id   string
	from time.Time // submission issued, or run_at
	// answered is when the submission call returned (Berth: the REST
	// answer), zero if not recorded.
	answered time.Time
}

// delays are what collect measured.
type delays struct {
	lat []time.Duration // start - from
	// call is answered - from and queued start - answered, for the
	// samples that recorded answered: where the pickup time goes.
	call, queued []time.Duration
	missing      int // never started
}

// collect waits until every sample's job has started (start returns its
// start time) or until wait has passed, and returns the delays and how
// many never started.
func collect(ctx context.Context, samples []sample, start func(id string) (time.Time, bool), wait time.Duration) delays {
	pending := map[int]bool{}
	for i, s := range samples {
		if s.id != "" {
			pending[i] = true
		}
	}
	var d delays
	deadline := time.Now().Add(wait)
	for {
		for i := range pending {
			if t, ok := start(samples[i].id); ok {
				s := samples[i]
				d.lat = append(d.lat, t.Sub(s.from))
				if !s.answered.IsZero() {
					d.call = append(d.call, s.answered.Sub(s.from))
					d.queued = append(d.queued, t.Sub(s.answered))
				}
				delete(pending, i)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			d.missing = len(pending)
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *bench) stampStart(id string) (time.Time, bool) {
	s, ok := b.stamps.take("run", id)
	return s.at, ok
}

// load describes the arrivals of one measurement.
type load struct {
	name    string
	rate    float64       // jobs per second, evenly spaced
	d       time.Duration // measured period
	warm    time.Duration // arrivals before the measured period, not counted
	senders int           // goroutines submitting
	delay   uint64        // > 0: scheduled that many seconds ahead
	settle  bool          // let the pool idle for settle first
	hold    int           // long jobs kept running on the pool meanwhile
	ready   *sync.WaitGroup
}

func (l load) total() int { return max(1, int(l.rate*(l.d+l.warm).Seconds())) }

func (l load) warmN() int { return int(l.rate * l.warm.Seconds()) }

// start lets the pool settle if asked, then waits for the other side.
func (l load) start(ctx context.Context) {
	if l.settle {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
		}
	}
	if l.ready != nil {
		l.ready.Done()
		l.ready.Wait()
	}
}

// measured drops the warm-up arrivals.
func (l load) measured(samples []sample) []sample {
	for i := range min(l.warmN(), len(samples)) {
		samples[i].id = ""
	}
	return samples
}

// pickupResult is one side of one load.
type pickupResult struct {
	lat      []time.Duration
	missing  int
	achieved float64
	errors   int
	maxQueue int // longest queue seen during the arrivals (sampled every 50 ms)
	// call and queued split a Berth pickup: the REST call, then the
	// rest (queue, fetch, Start script, the run's message to the plugin).
	call, queued []time.Duration
}

// split describes where a Berth pickup's time went, "" when not recorded.
func (r pickupResult) split() string {
	if len(r.call) == 0 {
		return ""
	}
	c, q := summarise(r.call), summarise(r.queued)
	return fmt.Sprintf("REST call p50/p99 %.2f / %.2f ms, then to the plugin's Run p50/p99 %.2f / %.2f ms", c.P50, c.P99, q.P50, q.P99)
}

func (r pickupResult) figure() *figure { return latency(r.lat, r.missing+r.errors) }

// rawPickup runs a raw pool with an in-process STAMP handler, submits l
// (Enqueue, or EnqueueIn measured against RunAt) and collects the starts.
func (b *bench) rawPickup(ctx context.Context, l load) pickupResult {
	ns := rawNS(l.name)
	starts := newStartTimes()
	wp := b.newRawPool(ns, "STAMP", func(j *work.Job) error {
		starts.set(j.ID, time.Now())
		return nil
	})
	var held atomic.Int64
	holding, release := make(chan struct{}), make(chan struct{})
	// HOLD as on the Berth side, whose plugin serves STAMP and HOLD.
	wp.JobWithOptions("HOLD", work.JobOptions{MaxFails: 1, SkipDead: true}, func(*work.Job) error {
		if held.Add(1) == int64(l.hold) {
			close(holding)
		}
		<-release
		return nil
	})
	wp.Start()
	defer wp.Stop()
	e := work.NewEnqueuer(ns, b.subject)
	if l.hold > 0 {
		defer close(release) // before wp.Stop, which waits for the jobs
		for range l.hold {
			if _, err := e.Enqueue("HOLD", nil); err != nil {
				return pickupResult{errors: 1}
			}
		}
		select {
		case <-holding:
		case <-time.After(15 * time.Second):
			return pickupResult{errors: 1}
		}
	}
	l.start(ctx)
	stopWatch := b.watchQueue(store.NewKeys("bench-raw-"+l.name), "STAMP")
	samples := make([]sample, l.total())
	var errs atomic.Int64
	ach := paced(ctx, l.rate, len(samples), l.senders, func(i int) {
		t := time.Now()
		if l.delay > 0 {
			sj, err := e.EnqueueIn("STAMP", int64(l.delay), work.Q{"i": i})
			if err != nil {
				errs.Add(1)
				return
			}
			samples[i] = sample{id: sj.ID, from: time.Unix(sj.RunAt, 0)}
			return
		}
		j, err := e.Enqueue("STAMP", work.Q{"i": i})
		if err != nil {
			errs.Add(1)
			return
		}
		samples[i] = sample{id: j.ID, from: t}
	})
	maxQ := stopWatch()
	d := collect(ctx, l.measured(samples), starts.get, time.Duration(l.delay)*time.Second+15*time.Second)
	return pickupResult{lat: d.lat, missing: d.missing, achieved: ach, errors: int(errs.Load()), maxQueue: maxQ}
}

// berthPickup does the same through the REST API of h, with the plugin's
// STAMP job.
func (b *bench) berthPickup(ctx context.Context, h *berthHost, l load) pickupResult {
	for range l.hold {
		st, err := b.api.submit(ctx, h.url, submitBody("HOLD", job.Parameters{"hold_seconds": 600}, 0))
		if err != nil {
			return pickupResult{errors: 1}
		}
		select {
		case <-b.stamps.expect("run", st.ID):
		case <-time.After(15 * time.Second):
			return pickupResult{errors: 1}
		}
		defer func() { _ = b.api.action(context.Background(), h.url, st.ID, "stop") }()
	}
	l.start(ctx)
	stopWatch := b.watchQueue(h.keys, "STAMP")
	samples := make([]sample, l.total())
	var errs atomic.Int64
	ach := paced(ctx, l.rate, len(samples), l.senders, func(i int) {
		t := time.Now()
		st, err := b.api.submit(ctx, h.url, submitBody("STAMP", job.Parameters{"i": i}, l.delay))
		if err != nil {
			errs.Add(1)
			return
		}
		if l.delay > 0 {
			samples[i] = sample{id: st.ID, from: time.Unix(st.RunAt, 0)}
			return
		}
		samples[i] = sample{id: st.ID, from: t, answered: time.Now()}
	})
	maxQ := stopWatch()
	d := collect(ctx, l.measured(samples), b.stampStart, time.Duration(l.delay)*time.Second+15*time.Second)
	return pickupResult{lat: d.lat, missing: d.missing, achieved: ach, errors: int(errs.Load()), maxQueue: maxQ, call: d.call, queued: d.queued}
}

// watchQueue samples the length of a queue every 50 ms (one LLEN, on the
// counted pool) until the returned function is called, which returns the
// longest length seen: a queue that grows means the pool cannot keep up,
// one that stays short but with slow pickups means idle workers sleep.
func (b *bench) watchQueue(keys store.Keys, name string) func() int {
	done := make(chan struct{})
	var longest atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			c := b.pool.Get()
			n, err := redis.Int64(c.Do("LLEN", keys.Jobs(name)))
			c.Close()
			if err == nil && n > longest.Load() {
				longest.Store(n)
			}
		}
	}()
	return func() int {
		close(done)
		wg.Wait()
		return int(longest.Load())
	}
}

// Part 4: pickup latency on two hosts: a fresh one, and one that has
// already run a burst of o.burstJobs submissions (the case where wake-ups
// once wedged), each against a raw gocraft/work pool in the same run.
// Steady load (1,000 jobs/s): raw, then each host, one at a time. Sparse
// load (5 jobs/s) with no long job, with one, and with half the workers
// held by long jobs: raw and both hosts side by side (at 5 jobs/s each the
// three hardly compete, and it keeps the part short).
func partPickup(ctx context.Context, b *bench) error {
	o := b.opts
	fresh, err := b.startHost(ctx, "bench-pickup", "STAMP", "HOLD")
	if err != nil {
		return err
	}
	defer fresh.stop()
	burst, err := b.startHost(ctx, "bench-pickup-burst", "STAMP", "HOLD")
	if err != nil {
		return err
	}
	defer burst.stop()
	began := time.Now()
	rt, _, err := concurrently(ctx, 8, o.burstJobs, func(i int) error {
		_, err := b.api.submit(ctx, burst.url, submitBody("STAMP", job.Parameters{"burst": i}, 0))
		return err
	})
	if err != nil {
		return fmt.Errorf("the burst: %w", err)
	}
	if err := b.waitDrained(ctx, burst.keys, "STAMP", 10*time.Millisecond); err != nil {
		return fmt.Errorf("the burst: %w", err)
	}
	b.note("burst host: %d STAMP jobs posted from 8 clients (%.0f/s) and run, %.1f s in all, before any measurement",
		o.burstJobs, rt, time.Since(began).Seconds())
	b.stamps.reset()
	hosts := []struct {
		h    *berthHost
		key  string
		name string
	}{{fresh, "", "fresh host"}, {burst, "_after_burst", fmt.Sprintf("after a %d-job burst", o.burstJobs)}}

	// Steady: a fresh raw pool and each host take the load alone, after
	// warm arrivals that are not counted, so that all are in their steady
	// state (gocraft/work's workers poll every 0-10 ms while jobs keep
	// coming).
	steady := load{name: "pickup-steady", rate: o.steadyRate, d: o.steadyFor, warm: 500 * time.Millisecond, senders: 8}
	// perJob counts the Redis commands of one side's steady load, per
	// job submitted (the other host idles meanwhile: about 12 calls/s).
	perJob := func(run func() pickupResult) (pickupResult, string) {
		w, err := openWindow(b.pool, b.counter)
		r := run()
		if err != nil {
			return r, "Redis commands not counted: " + err.Error()
		}
		d, err := w.close()
		if err != nil {
			return r, "Redis commands not counted: " + err.Error()
		}
		return r, fmt.Sprintf("%.1f Redis commands a job", float64(d.Total)/float64(steady.total()))
	}
	raw, rawCmds := perJob(func() pickupResult { return b.rawPickup(ctx, steady) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	notes := []string{"raw " + rawCmds}
	for _, h := range hosts {
		before := b.poolsText(ctx, h.h)
		berth, cmds := perJob(func() pickupResult { return b.berthPickup(ctx, h.h, steady) })
		notes = append(notes, fmt.Sprintf("%s pools before: %s, after: %s, %s", h.name, before, b.poolsText(ctx, h.h), cmds))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m := &metric{Part: 4, Key: "pickup.steady" + h.key, Label: fmt.Sprintf("pickup @%.0f/s, %s", o.steadyRate, h.name), Unit: "ms p50 / p99", Berth: berth.figure(), Raw: raw.figure()}
		m.setRatio()
		m.judge("p99 <= 2x raw", berth.missing+berth.errors == 0 && m.Ratio != nil && *m.Ratio <= 2)
		b.add(m)
		notes = append(notes, fmt.Sprintf("%s achieved %.0f/s, errors %d, never started %d, longest queue %d, %s", h.name, berth.achieved, berth.errors, berth.missing, berth.maxQueue, berth.split()))
	}
	b.note("steady: %.0f jobs/s from 8 senders, %s of warm-up not counted, then %s; raw achieved %.0f/s, errors %d, never started within 15 s %d, longest queue %d; %s",
		o.steadyRate, steady.warm, o.steadyFor, raw.achieved, raw.errors, raw.missing, raw.maxQueue, strings.Join(notes, "; "))

	// Sparse: all idle for settle first, as on a quiet queue; then again
	// while long jobs (a scan, a replication) hold one worker, then half
	// of them, on every side: busy workers must not hold back idle ones.
	for _, c := range []struct {
		key, label string
		hold       int
		d          time.Duration
	}{
		{"pickup.sparse", "", 0, o.sparseFor},
		{"pickup.sparse_long_job", ", 1 long job running", 1, o.sparseFor / 2},
		{"pickup.sparse_half_held", fmt.Sprintf(", %d of %d workers held", o.workers/2, o.workers), o.workers / 2, o.sparseFor / 2},
	} {
		var ready sync.WaitGroup
		ready.Add(1 + len(hosts))
		l := load{name: strings.ReplaceAll(c.key, ".", "-"), rate: o.sparseRate, d: c.d, senders: 1, settle: true, hold: c.hold, ready: &ready}
		var rawRes pickupResult
		res := make([]pickupResult, len(hosts))
		var wg sync.WaitGroup
		wg.Add(1 + len(hosts))
		go func() {
			defer wg.Done()
			rawRes = b.rawPickup(ctx, l)
		}()
		for i, h := range hosts {
			go func() {
				defer wg.Done()
				res[i] = b.berthPickup(ctx, h.h, l)
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err() // incomplete: no figure
		}
		var notes []string
		for i, h := range hosts {
			r := res[i]
			m := &metric{Part: 4, Key: c.key + h.key, Label: fmt.Sprintf("pickup @%.0f/s%s, %s", o.sparseRate, c.label, h.name), Unit: "ms p50 / p99", Berth: r.figure(), Raw: rawRes.figure()}
			m.setRatio()
			m.judge("p99 <= 50 ms", r.missing+r.errors == 0 && len(r.lat) > 0 && m.Berth.Latency.P99 <= 50)
			b.add(m)
			notes = append(notes, fmt.Sprintf("%s errors %d, never started %d", h.name, r.errors, r.missing))
		}
		b.note("sparse%s: %.0f jobs/s for %s, evenly spaced, after %s idle, raw and both hosts at the same time, %d HOLD jobs on each; raw errors %d, never started %d; %s; with n=%d, p99 is the %s largest",
			c.label, o.sparseRate, c.d, settle, c.hold, rawRes.errors, rawRes.missing, strings.Join(notes, "; "), len(res[0].lat), rank99(len(res[0].lat)))
	}
	b.note("pickup = start of the handler (raw, in process) or of the plugin's Run (berth, UDP report) - submission issued; berth includes its REST call")
	return ctx.Err()
}

// poolsText lists the worker pools of h's namespace with their workers.
func (b *bench) poolsText(ctx context.Context, h *berthHost) string {
	hb, err := queue.Heartbeats(ctx, b.subject, h.keys.WorkNamespace(), time.Minute, time.Now())
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, p := range hb {
		parts = append(parts, fmt.Sprintf("%.6s (%d)", p.WorkerPoolID, p.Concurrency))
	}
	return strings.Join(parts, " ")
}

// rank99 names the sample the p99 of n samples is.
func rank99(n int) string {
	r := n - (n*99+99)/100 + 1
	switch r {
	case 1:
		return "1st"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", r)
}

// Part 5: scheduled lateness. Raw EnqueueIn and Berth Scheduled
// submissions with the same delay, side by side, at a low rate.
func partScheduled(ctx context.Context, b *bench) error {
	o := b.opts
	h, err := b.startHost(ctx, "bench-scheduled", "STAMP", "HOLD")
	if err != nil {
		return err
	}
	defer h.stop()
	var ready sync.WaitGroup
	ready.Add(2)
	l := load{name: "scheduled", rate: o.scheduledRate, d: o.scheduledFor, senders: 1, delay: o.scheduledDelay, settle: true, ready: &ready}
	var raw pickupResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		raw = b.rawPickup(ctx, l)
	}()
	berth := b.berthPickup(ctx, h, l)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	m := &metric{Part: 5, Key: "scheduled.lateness", Label: fmt.Sprintf("scheduled %ds ahead, lateness", o.scheduledDelay), Unit: "ms p50 / p99", Berth: berth.figure(), Raw: raw.figure()}
	m.setRatio()
	m.judge("p99 <= 100 ms", berth.missing+berth.errors == 0 && len(berth.lat) > 0 && m.Berth.Latency.P99 <= 100)
	b.add(m)
	b.note("%.0f jobs/s for %s, each %d s ahead, raw (EnqueueIn) and berth (kind Scheduled) at the same time; errors raw %d, berth %d; never started: raw %d, berth %d",
		o.scheduledRate, o.scheduledFor, o.scheduledDelay, raw.errors, berth.errors, raw.missing, berth.missing)
	b.note("lateness = start - run_at (whole unix seconds, as each system returned it); min raw %.0f ms, berth %.0f ms",
		minOf(m.Raw), minOf(m.Berth))
	return ctx.Err()
}

func minOf(f *figure) float64 {
	if f == nil || f.Latency == nil {
		return 0
	}
	return f.Latency.Min
}
