package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// Part 1: raw gocraft/work. Each run enqueues n no-op jobs from one client
// (the enqueue figure), then starts a pool with an in-process no-op
// handler and times it until the handler has run n times.
func partRaw(ctx context.Context, b *bench) error {
	n := b.opts.jobs
	var enq, proc []float64
	var cpu cpuUse
	for r := range b.opts.runs {
		ns := rawNS(fmt.Sprintf("process-%d", r))
		e := work.NewEnqueuer(ns, b.subject)
		start := time.Now()
		for i := range n {
			if _, err := e.Enqueue("NOOP", work.Q{"i": i}); err != nil {
				return fmt.Errorf("raw enqueue: %w", err)
			}
			if i%512 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		enq = append(enq, float64(n)/time.Since(start).Seconds())

		var done atomic.Int64
		all := make(chan struct{})
		wp := b.newRawPool(ns, "NOOP", func(*work.Job) error {
			if done.Add(1) == int64(n) {
				close(all)
			}
			return nil
		})
		meter := b.cpuMeter(nil)
		start = time.Now()
		wp.Start()
		select {
		case <-all:
		case <-ctx.Done():
			wp.Stop()
			return fmt.Errorf("raw processing: %d of %d jobs done: %w", done.Load(), n, ctx.Err())
		}
		proc = append(proc, float64(n)/time.Since(start).Seconds())
		cpu.add(meter.stop())
		wp.Stop()
	}
	b.add(&metric{Part: 1, Key: "raw.enqueue_1_client", Label: "raw enqueue, 1 client", Unit: "jobs/s", Raw: rate(enq, n)})
	b.add(&metric{Part: 1, Key: "raw.process", Label: "processing, no-op jobs", Unit: "jobs/s", Raw: rate(proc, n)})
	b.note("raw: a gocraft/work pool of %d workers with an in-process no-op handler, started after the jobs were queued", b.opts.workers)
	b.note("raw processing CPU: %s", cpu.text(n*b.opts.runs, false))
	b.rawCPU = (cpu.Bench + cpu.Redis) / time.Duration(n*b.opts.runs)
	return nil
}

// Part 2: Berth processing. One host runs with the bench plugin (a real
// process). Each run queues n NOOP jobs with their stats (store.Create,
// as a submission does) while the queue is paused, then unpauses it, rings
// the doorbell once and times until the queue is empty and no job is in
// flight (polled every 2 ms, two commands a poll). The statuses are then
// checked outside the timed window.
func partProcess(ctx context.Context, b *bench) error {
	const ns = "bench-process"
	if b.opts.pluginProfile != "" {
		os.Setenv("BERTH_PLUGIN_BENCH_CPUPROFILE", b.opts.pluginProfile)
		defer os.Unsetenv("BERTH_PLUGIN_BENCH_CPUPROFILE")
	}
	jobs := []string{"NOOP"}
	if b.opts.pluginProfile != "" {
		jobs = append(jobs, "PROFILE_STOP")
	}
	h, err := b.startHost(ctx, ns, jobs...)
	if err != nil {
		return err
	}
	defer h.stop()
	n := b.opts.jobs
	var proc []float64
	var cpu cpuUse
	failed := 0
	for r := range b.opts.runs {
		rate, use, bad, err := b.batch(ctx, h, "NOOP", n, func(i int) job.Parameters { return job.Parameters{"i": i} })
		if err != nil {
			if len(proc) > 0 {
				b.add(b.processMetric(proc, n))
			}
			return fmt.Errorf("run %d: %w", r+1, err)
		}
		proc = append(proc, rate)
		cpu.add(use)
		failed += bad
	}
	b.add(b.processMetric(proc, n))
	b.note("berth: one host, %d workers, default configuration (FILE job log), the bench plugin's NOOP over go-plugin gRPC, statuses Pending->Running->Success in Redis", b.opts.workers)
	b.note("berth processing CPU: %s", cpu.text(n*b.opts.runs, true))
	b.add(b.cpuPerJobMetric(cpu, n*b.opts.runs))
	if failed > 0 {
		b.note("%d jobs did not end Success", failed)
	}
	if b.opts.pluginProfile != "" {
		b.stopPluginProfile(ctx, h, b.opts.pluginProfile)
	}
	return nil
}

// batch runs n jobs of name on host h, as part 2 describes: it queues them
// with their stats while the queue is paused, unpauses it, rings the
// doorbell and times until the queue is empty and no job is in flight. It
// returns the jobs per second, the CPU every process used meanwhile, and
// how many jobs did not end Success.
func (b *bench) batch(ctx context.Context, h *berthHost, name string, n int, params func(i int) job.Parameters) (float64, cpuUse, int, error) {
	return b.batchPolled(ctx, h, name, n, params, 2*time.Millisecond)
}

// batchPolled is batch, polling for the end every poll: a coarser poll
// costs the bench process less CPU while slow jobs run (what part 8
// measures), a finer one times the end better (what part 2 measures).
func (b *bench) batchPolled(ctx context.Context, h *berthHost, name string, n int, params func(i int) job.Parameters, poll time.Duration) (float64, cpuUse, int, error) {
	st := store.New(b.subject, store.Options{Namespace: h.ns})
	keys := st.Keys()
	if err := b.do("SET", keys.Paused(name), "1"); err != nil {
		return 0, cpuUse{}, 0, err
	}
	ids := make([]string, n)
	for i := range ids {
		now := st.Now()
		s := &job.Stats{ID: job.NewID(), Name: name, Kind: job.Generic, Status: job.Pending,
			EnqueueTime: now, UpdateTime: now, Revision: now, Parameters: params(i)}
		s.RefLink = job.RefLink(s.ID)
		if _, err := st.Create(ctx, s); err != nil {
			return 0, cpuUse{}, 0, err
		}
		ids[i] = s.ID
	}
	// Let the wake-ups of the creations end (the queue is paused).
	time.Sleep(200 * time.Millisecond)
	meter := b.cpuMeter(h.d.PluginPIDs())
	start := time.Now()
	if err := b.do("DEL", keys.Paused(name)); err != nil {
		return 0, cpuUse{}, 0, err
	}
	if err := b.do("PUBLISH", keys.Doorbell(), name); err != nil {
		return 0, cpuUse{}, 0, err
	}
	if err := b.waitDrained(ctx, keys, name, poll); err != nil {
		return 0, cpuUse{}, 0, err
	}
	rate := float64(n) / time.Since(start).Seconds()
	use := meter.stop()
	bad, err := b.notSuccess(keys, ids)
	return rate, use, bad, err
}

// processMetric is part 2's line, compared with part 1's raw figure.
func (b *bench) processMetric(proc []float64, n int) *metric {
	m := &metric{Part: 2, Key: "berth.process", Label: "processing, plugin + status", Unit: "jobs/s", Berth: rate(proc, n)}
	for _, x := range b.rep.Metrics {
		if x.Key == "raw.process" {
			m.Raw = x.Raw
		}
	}
	m.setRatio()
	if m.Ratio != nil {
		m.judge(">= 0.60x raw", *m.Ratio >= 0.6)
	} else {
		m.Target = ">= 0.60x raw (no baseline: part 1 failed)"
	}
	return m
}

// cpuPerJobMetric is part 2's CPU per no-op job over every process
// (host, plugin, Redis), against part 1's.
func (b *bench) cpuPerJobMetric(cpu cpuUse, jobs int) *metric {
	per := float64((cpu.Bench + cpu.Plugins + cpu.Redis).Microseconds()) / float64(jobs)
	m := &metric{Part: 2, Key: "berth.cpu_per_job", Label: "CPU per no-op job, host + plugin + redis", Unit: "us",
		Berth: &figure{Value: per, Runs: b.opts.runs, PerRunCount: jobs / b.opts.runs}}
	if b.rawCPU > 0 {
		m.Raw = &figure{Value: float64(b.rawCPU.Microseconds()), Runs: b.opts.runs, PerRunCount: jobs / b.opts.runs}
		m.setRatio()
	}
	m.judge("<= 2x raw", m.Ratio != nil && *m.Ratio <= 2)
	return m
}

// do runs one command on the bench's own pool.
func (b *bench) do(cmd string, args ...any) error {
	c := b.pool.Get()
	defer c.Close()
	_, err := c.Do(cmd, args...)
	return err
}

// notSuccess counts the jobs whose status is not Success.
func (b *bench) notSuccess(keys store.Keys, ids []string) (int, error) {
	c := b.pool.Get()
	defer c.Close()
	for _, id := range ids {
		_ = c.Send("HGET", keys.Stats(id), "status")
	}
	if err := c.Flush(); err != nil {
		return 0, err
	}
	bad := 0
	for range ids {
		s, err := redis.String(c.Receive())
		if err != nil && !errors.Is(err, redis.ErrNil) {
			return 0, err
		}
		if job.Status(s) != job.Success {
			bad++
		}
	}
	return bad, nil
}

// stopPluginProfile runs PROFILE_STOP on the host and waits for its end;
// the plugin writes its profile to path.<pid>.
func (b *bench) stopPluginProfile(ctx context.Context, h *berthHost, path string) {
	st, err := b.api.submit(ctx, h.url, submitBody("PROFILE_STOP", nil, 0))
	if err != nil {
		b.note("plugin profile: %v", err)
		return
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, err := b.api.get(ctx, h.url, st.ID); err == nil && s.Status.Final() {
			b.note("plugin CPU profile written to %s.<pid>", path)
			return
		}
	}
	b.note("plugin profile: PROFILE_STOP did not end")
}

// Part 3: submissions. Raw: n jobs enqueued by 8 goroutines sharing one
// gocraft/work enqueuer. Berth: n NOOP jobs posted to the REST API by 8
// clients (keep-alive connections, the Harbor-Secret header, the plugin's
// Validate over gRPC, stats and queue entry in one script). The NOOP queue
// is paused during the Berth runs so that, as on the raw side, no worker
// competes for the CPU: this measures the submission path alone.
func partSubmit(ctx context.Context, b *bench) error {
	const clients = 8
	n := b.opts.jobs
	var rawRates []float64
	var rawLat []time.Duration
	for r := range b.opts.runs {
		e := work.NewEnqueuer(rawNS(fmt.Sprintf("submit-%d", r)), b.subject)
		rt, lat, err := concurrently(ctx, clients, n, func(i int) error {
			_, err := e.Enqueue("NOOP", work.Q{"i": i})
			return err
		})
		if err != nil {
			return fmt.Errorf("raw enqueue: %w", err)
		}
		rawRates = append(rawRates, rt)
		rawLat = append(rawLat, lat...)
	}
	b.add(&metric{Part: 3, Key: "raw.enqueue_8_clients", Label: "raw enqueue, 8 clients", Unit: "jobs/s", Raw: rate(rawRates, n)})

	const ns = "bench-submit"
	keys := store.NewKeys(ns)
	if err := b.do("SET", keys.Paused("NOOP"), "1"); err != nil {
		return err
	}
	h, err := b.startHost(ctx, ns, "NOOP")
	if err != nil {
		return err
	}
	defer h.stop()
	// Warm the connections and the plugin.
	if _, _, err := concurrently(ctx, clients, 64, func(i int) error {
		_, err := b.api.submit(ctx, h.url, submitBody("NOOP", job.Parameters{"i": i}, 0))
		return err
	}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var rates []float64
	var lat []time.Duration
	var cpu cpuUse
	w, err := openWindow(b.pool, b.counter)
	if err != nil {
		return err
	}
	for range b.opts.runs {
		meter := b.cpuMeter(h.d.PluginPIDs())
		rt, l, err := concurrently(ctx, clients, n, func(i int) error {
			_, err := b.api.submit(ctx, h.url, submitBody("NOOP", job.Parameters{"i": i}, 0))
			return err
		})
		if err != nil {
			return fmt.Errorf("REST submissions: %w", err)
		}
		cpu.add(meter.stop())
		rates = append(rates, rt)
		lat = append(lat, l...)
	}
	if d, err := w.close(); err == nil {
		total := float64(n * b.opts.runs)
		b.note("berth: Redis calls per submission %.1f: %s", float64(d.Total)/total, topText(d.top(10, total)))
	}
	m := &metric{Part: 3, Key: "berth.submit_8_clients", Label: "REST submit, 8 clients", Unit: "jobs/s", Berth: rate(rates, n), Raw: rate(rawRates, n)}
	m.setRatio()
	m.judge(">= 0.35x raw", m.Ratio != nil && *m.Ratio >= 0.35)
	b.add(m)
	lm := &metric{Part: 3, Key: "berth.submit_latency", Label: "submit latency, 8 clients", Unit: "ms p50 / p99", Berth: latency(lat, 0), Raw: latency(rawLat, 0)}
	lm.setRatio()
	lm.judge("p99 < 10 ms", lm.Berth.Latency.N > 0 && lm.Berth.Latency.P99 < 10)
	b.add(lm)
	var child cpuUse
	for r := range b.opts.runs {
		rt, use, err := b.submitFromChild(ctx, h, n, clients)
		if err != nil {
			return fmt.Errorf("submissions from another process, run %d: %w", r+1, err)
		}
		child.add(use)
		b.note("submissions from another process, run %d: %s jobs/s", r+1, num(rt))
	}
	b.add(submissionCPUMetric(child, n*b.opts.runs, b.opts.runs))
	b.note("berth submission CPU, clients in another process: %s", child.text(n*b.opts.runs, true))
	b.note("berth: the NOOP queue is paused during the runs (as raw enqueue runs with no workers); each submission still rings the doorbell")
	b.note("berth submission CPU (the bench process holds the 8 HTTP clients too): %s", cpu.text(n*b.opts.runs, true))
	return nil
}

// concurrently runs fn(i) for i in [0, n) from clients goroutines as fast
// as they go, and returns the rate and each call's latency.
func concurrently(ctx context.Context, clients, n int, fn func(i int) error) (float64, []time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := fn(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, nil, firstErr
	}
	if ctx.Err() != nil {
		return 0, nil, ctx.Err()
	}
	return float64(n) / elapsed.Seconds(), lat, nil
}
