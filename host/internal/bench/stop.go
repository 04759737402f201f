package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// Part 6: stop latency. Each sample submits a HOLD job (which waits on
// its context), posts stop at some moment of its life and measures until
// the job's status is Stopped. The status is read straight from the job's
// stats hash in a tight loop (HGET every 1 ms), which is what GET
// /api/v1/jobs/{id} returns, without the HTTP round trip: the figure is
// the time of the first read that shows Stopped, so it overstates the
// latency by at most 1 ms plus one Redis round trip. The moments:
//   - run: once the plugin reported that Run started; the plugin also
//     reports when the job's context ended ("done"): the time the stop
//     took to reach the plugin;
//   - running: at the first read (1 ms loop) that shows the job Running,
//     when the plugin may not have the job yet;
//   - random: a uniform 0-20 ms after the submission was answered: the
//     job may be Pending, starting or running.
//
// Same host: one host runs, the stop is posted to it. Across hosts: two
// hosts share the namespace; at "run" the stop is posted to the one that
// does not run the job (told by the plugin's process ID), at the other
// moments (the host that runs it is not known yet) to each host in turn.
// gocraft/work has no stop: there is no raw counterpart.
func partStop(ctx context.Context, b *bench) error {
	const ns = "bench-stop"
	a, err := b.startHost(ctx, ns, "HOLD")
	if err != nil {
		return err
	}
	defer a.stop()
	if err := b.stopSeries(ctx, []*berthHost{a}); err != nil {
		return err
	}
	c, err := b.startHost(ctx, ns, "HOLD")
	if err != nil {
		return err
	}
	defer c.stop()
	if err := b.stopSeries(ctx, []*berthHost{a, c}); err != nil {
		return err
	}
	b.note("stop latency = POST stop issued -> first HGET (1 ms loop) of the stats hash showing Stopped; raw gocraft/work has no stop")
	b.note("stop moments: after Run started in the plugin; at the first read showing Running; a random 0-20 ms after the submission (across hosts, the last two are posted to each host in turn)")
	return nil
}

// stopSeries measures a stop at each moment on one host, or across two,
// against the target of that many hosts.
func (b *bench) stopSeries(ctx context.Context, hosts []*berthHost) error {
	key, label, target, limit := "stop.same_host", "stop, same host", "p99 <= 50 ms", 50.0
	if len(hosts) > 1 {
		key, label, target, limit = "stop.cross_host", "stop, across 2 hosts", "p99 <= 100 ms", 100
	}
	for _, m := range stopMoments {
		r, err := b.stopSamples(ctx, hosts, m)
		b.addStop(key+m.key, label+m.label, r, target, limit)
		if err != nil {
			return fmt.Errorf("%s, %s: %w", label, m.name, err)
		}
		if m.name != "run" {
			continue
		}
		if len(hosts) > 1 {
			b.note("across hosts: POST answered p50/p99 %s ms; stop reached the plugin p50/p99 %s ms; jobs ran on the first host %d times, on the second %d times",
				pair(r.post), pair(r.ctxDone), r.onHost[0], r.onHost[1])
		} else {
			b.note("same host: POST answered p50/p99 %s ms; stop reached the plugin (its context ended) p50/p99 %s ms",
				pair(r.post), pair(r.ctxDone))
		}
	}
	return nil
}

// stopMoment is when in a job's life a sample posts its stop.
type stopMoment struct{ name, key, label string }

var stopMoments = []stopMoment{
	{"run", "", ""},
	{"running", ".at_running", ", at the instant Running"},
	{"random", ".random", ", at a random moment"},
}

type stopResult struct {
	stopped, post, ctxDone []time.Duration
	missing                int
	onHost                 [2]int
}

func pair(ds []time.Duration) string {
	l := summarise(ds)
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s", num(l.P50), num(l.P99))
}

func (b *bench) addStop(key, label string, r stopResult, target string, limit float64) {
	m := &metric{Part: 6, Key: key, Label: label, Unit: "ms p50 / p99", Berth: latency(r.stopped, r.missing)}
	m.judge(target, r.missing == 0 && len(r.stopped) > 0 && m.Berth.Latency.P99 <= limit)
	b.add(m)
}

// stopSamples measures o.stopSamples stops posted at moment m. With two
// hosts the stop goes to another host than the job's where that is known
// (moment "run"), else to each host in turn.
func (b *bench) stopSamples(ctx context.Context, hosts []*berthHost, m stopMoment) (stopResult, error) {
	var r stopResult
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	for i := 0; i < b.opts.stopSamples; i++ {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		st, err := b.api.submit(ctx, hosts[0].url, submitBody("HOLD", job.Parameters{"hold_seconds": 30, "i": i}, 0))
		if err != nil {
			return r, err
		}
		run := b.stamps.expect("run", st.ID)
		target := hosts[i%len(hosts)]
		switch m.name {
		case "run":
			var started stamp
			select {
			case started = <-run:
			case <-time.After(10 * time.Second):
				r.missing++
				continue
			case <-ctx.Done():
				return r, ctx.Err()
			}
			if len(hosts) > 1 {
				runner := -1
				for k, h := range hosts {
					if h.runs(started.pid) {
						runner = k
					}
				}
				if runner < 0 {
					return r, fmt.Errorf("job %s ran in plugin process %d, which neither host owns", st.ID, started.pid)
				}
				r.onHost[runner]++
				target = hosts[1-runner]
			}
		case "running":
			if _, err := b.waitStatus(ctx, hosts[0].keys.Stats(st.ID), job.Running, 10*time.Second); err != nil {
				r.missing++
				b.note("job %s: %v", st.ID, err)
				continue
			}
		case "random":
			time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		}
		done := b.stamps.expect("done", st.ID)
		t0 := time.Now()
		if err := b.api.action(ctx, target.url, st.ID, "stop"); err != nil {
			return r, err
		}
		r.post = append(r.post, time.Since(t0))
		at, err := b.waitStatus(ctx, target.keys.Stats(st.ID), job.Stopped, 10*time.Second)
		if err != nil {
			r.missing++
			b.note("job %s (stop %s): %v", st.ID, m.name, err)
			continue
		}
		r.stopped = append(r.stopped, at.Sub(t0))
		if m.name == "run" {
			select {
			case s := <-done:
				r.ctxDone = append(r.ctxDone, s.at.Sub(t0))
			case <-time.After(time.Second):
			}
		}
		// A stop that came before Run leaves no stamp to wait for.
		b.stamps.take("run", st.ID)
		b.stamps.take("done", st.ID)
	}
	return r, nil
}

// waitStatus reads the status of a stats hash every millisecond until it
// is want, and returns when the read that saw it was answered.
func (b *bench) waitStatus(ctx context.Context, key string, want job.Status, bound time.Duration) (time.Time, error) {
	c := b.pool.Get()
	defer c.Close()
	deadline := time.Now().Add(bound)
	last := ""
	for {
		s, err := redis.String(c.Do("HGET", key, "status"))
		now := time.Now()
		if err != nil && !errors.Is(err, redis.ErrNil) {
			return now, err
		}
		if job.Status(s) == want {
			return now, nil
		}
		last = s
		if now.After(deadline) || ctx.Err() != nil {
			return now, fmt.Errorf("still %q after %s", last, bound)
		}
		time.Sleep(time.Millisecond)
	}
}
