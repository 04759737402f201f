package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// fault is one row of the table: how to set the scene up, how to inject
// the fault and how to tell when it is over.
type fault struct {
	name, what string
	// short: part of the -short run.
	short bool
	// lossAllowed says why lost jobs are expected (Redis kept nothing):
	// they are counted and shown, and do not fail the suite.
	lossAllowed string
	load        load
	setup       func(context.Context, *scene) error
	// inject injects the fault and returns when the faulty part is back
	// (or, for a kill, when it was killed).
	inject func(context.Context, *scene) (time.Time, error)
	// check runs after the jobs settled, for what the table does not show.
	check func(context.Context, *scene)
}

// sentinelReplicaAcks is worker_pool.redis_pool.replica_acks of the
// sentinel-failover fault's hosts: 0, Berth's default, measured as it
// ships. What the old primary took last is made again from each host's
// journal (store.Replay); with 1, submissions were refused for more than
// 10 s after the failover, until the demoted primary had resynced.
const sentinelReplicaAcks = 0

// faults returns the suite's faults, in the order they run.
func faults(opts options) []*fault {
	idle := opts.idleConns
	return []*fault{
		{name: "host-kill", what: "kill -9 of one of two hosts", short: true,
			setup: twoHosts(noPersistence), inject: hostKill},
		{name: "host-freeze", what: "SIGSTOP of one of two hosts past dead_after, then SIGCONT",
			// One PROBE job in 8 is longer than dead_after: runs the
			// frozen host's plugin still has when the other host takes
			// its jobs.
			load:  load{rate: 12, holdMin: 0.2, holdMax: 0.8, longEvery: 8, longHold: [2]float64{10, 12}},
			setup: twoHosts(noPersistence), inject: hostFreeze},
		{name: "plugin-kill", what: "SIGKILL of a host's plugin processes", short: true,
			setup: twoHosts(noPersistence), inject: pluginKill},
		{name: "plugin-hang", what: "SIGSTOP of a host's plugin processes, left stopped",
			setup: twoHosts(noPersistence), inject: pluginHang},
		{name: "redis-restart-aof", what: "Redis stopped (SIGTERM) and started again, AOF appendfsync always", short: true,
			setup: twoHosts(aofAlways), inject: redisOutage(false)},
		{name: "redis-restart-none", what: "Redis stopped (SIGTERM) and started again, no persistence",
			lossAllowed: "Redis without persistence keeps nothing across a restart",
			setup:       twoHosts(noPersistence), inject: redisOutage(false)},
		{name: "redis-kill-aof", what: "kill -9 of Redis and a new start, AOF appendfsync always",
			setup: twoHosts(aofAlways), inject: redisOutage(true)},
		{name: "redis-late", what: "Redis unreachable when the host starts (up once the host exits, or after 5 s)",
			setup: noHosts, inject: redisLate},
		{name: "sentinel-failover", what: "Sentinel failover (redis+sentinel://, password on the data nodes)", short: true,
			setup: sentinelHosts, inject: sentinelFailover},
		{name: "log-disk-full", what: "FILE job logs on a full tmpfs",
			load:  load{rate: 16, holdMin: 0.2, holdMax: 0.8, logLines: 50},
			setup: fullDiskHosts, inject: logDiskFull, check: checkLogs},
		{name: "idle-conns", what: fmt.Sprintf("%d idle connections to one host's API", idle), short: true,
			setup: twoHosts(noPersistence), inject: idleConns(idle)},
	}
}

// twoHosts starts a redis-server and two hosts on it.
func twoHosts(p persistence) func(context.Context, *scene) error {
	return func(ctx context.Context, sc *scene) error {
		r, err := newRedis(sc.s.procs, sc.dir, "redis", p, "")
		if err != nil {
			return err
		}
		sc.redis = append(sc.redis, r)
		if err := r.run(ctx); err != nil {
			return err
		}
		return sc.startHosts(ctx, hostOpts{redisURL: "redis://" + r.addr(), namespace: sc.ns}, "A", "B")
	}
}

// startHosts starts hosts on one configuration, waits until each serves,
// and makes them the load's targets.
func (sc *scene) startHosts(ctx context.Context, o hostOpts, names ...string) error {
	var hs []*berthHost
	for _, n := range names {
		h, err := sc.startHost(n, o)
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		if err := h.waitServing(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("host %s does not serve: %w", h.name, err)
		}
	}
	sc.setTargets(hs...)
	return nil
}

func noHosts(context.Context, *scene) error { return nil }

// hostKill: kill -9 of host A while it runs jobs; B's reaper must queue
// them again after dead_after.
func hostKill(ctx context.Context, sc *scene) (time.Time, error) {
	a, b := sc.hosts[0], sc.hosts[1]
	if err := sc.warm(ctx, a, 2); err != nil {
		return time.Time{}, err
	}
	sc.setTargets(b)
	n := len(sc.inFlight(a.plugins(), 0))
	sc.at = time.Now()
	if err := a.p.signal(syscall.SIGKILL); err != nil {
		return time.Time{}, err
	}
	a.p.waitEnd(10 * time.Second)
	sc.note("host A killed with %d PROBE runs in flight", n)
	return time.Now(), nil
}

// reapedLine is what the reaper logs when it takes a pool as dead.
const reapedLine = "a worker pool stopped beating"

// hostFreeze: SIGSTOP of host A until B takes A's pool as dead and runs
// one of A's jobs again, then SIGCONT.
func hostFreeze(ctx context.Context, sc *scene) (time.Time, error) {
	a, b := sc.hosts[0], sc.hosts[1]
	if err := sc.warm(ctx, a, 2); err != nil {
		return time.Time{}, err
	}
	pids := a.plugins()
	// Freeze A while it runs a long PROBE job (started a second ago).
	if err := waitFor(ctx, 20*time.Second, 20*time.Millisecond, func() error {
		if len(sc.inFlight(pids, time.Second)) == 0 {
			return errors.New("A runs no long PROBE job")
		}
		return nil
	}); err != nil {
		return time.Time{}, err
	}
	sc.setTargets(b)
	frozen := sc.inFlight(pids, 0)
	reaped, _ := b.logCount(reapedLine)
	at := time.Now()
	sc.at = at
	if err := a.p.signal(syscall.SIGSTOP); err != nil {
		return time.Time{}, err
	}
	sc.stopped = append(sc.stopped, a.p.pid())
	// A's pool is dead to B when B shows it Dead or has reaped it.
	err := waitFor(ctx, deadAfter+15*time.Second, 100*time.Millisecond, func() error {
		ps, err := b.pools(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Status == client.PoolDead {
				return nil
			}
		}
		if n, _ := b.logCount(reapedLine); n > reaped {
			return nil
		}
		return errors.New("B shows no pool Dead and reaped none")
	})
	if err != nil {
		sc.defect("B never took A's pool as dead: %v", err)
	} else {
		sc.note("B took A's pool as dead %s after the freeze", time.Since(at).Round(100*time.Millisecond))
	}
	if err := waitFor(ctx, 8*time.Second, 50*time.Millisecond, func() error {
		if !sc.book.rerun(frozen, pids, at) {
			return errors.New("no job of the frozen host runs again elsewhere")
		}
		return nil
	}); err != nil {
		sc.note("none of A's %d PROBE jobs ran again on B within 8s of that", len(frozen))
	} else {
		// Frozen a second more: a run that outlives its lease (the
		// frozen host's plugin still running it) overlaps the new one by
		// that much, however the timing of the freeze fell.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err := a.p.signal(syscall.SIGCONT); err != nil {
		return time.Time{}, err
	}
	sc.note("A frozen %s with %d PROBE runs in flight", time.Since(at).Round(100*time.Millisecond), len(frozen))
	sc.afterSettle = append(sc.afterSettle, func() {
		sc.note("%s", sc.book.runsAround(frozen, pids, at))
	})
	sc.setTargets(a, b)
	return time.Now(), nil
}

// pluginKill: SIGKILL of host A's plugin processes; the host must start
// them again and the jobs in them must end or run again.
func pluginKill(ctx context.Context, sc *scene) (time.Time, error) {
	a := sc.hosts[0]
	if err := sc.warm(ctx, a, 2); err != nil {
		return time.Time{}, err
	}
	old := a.plugins()
	at := time.Now()
	sc.at = at
	for _, pid := range old {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return sc.pluginsBack(ctx, a, old, at, "killed"), nil
}

// pluginHang: SIGSTOP of host A's plugin processes, never continued; the
// host must notice, replace them, and end or re-run their jobs.
func pluginHang(ctx context.Context, sc *scene) (time.Time, error) {
	a := sc.hosts[0]
	if err := sc.warm(ctx, a, 2); err != nil {
		return time.Time{}, err
	}
	old := a.plugins()
	at := time.Now()
	sc.at = at
	for _, pid := range old {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		sc.stopped = append(sc.stopped, pid)
	}
	// A submission to the host of the hung plugin: does it answer?
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	t0 := time.Now()
	slow, err := client.New("http://127.0.0.1:"+strconv.Itoa(a.port), secret, client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		cancel()
		return time.Time{}, err
	}
	_, err = slow.Submit(sctx, client.RequestJob{Name: demoJob, Parameters: client.Parameters{"image": "demo-hang", "hold_seconds": 0.1},
		Metadata: &client.Metadata{Kind: client.Generic}})
	cancel()
	took := time.Since(t0).Round(10 * time.Millisecond)
	switch {
	case err != nil && took >= 20*time.Second:
		sc.defect("a submission to A with its plugins hung got no answer in %s: %s", took, shortErr(err))
	case err != nil:
		sc.note("a submission to A with its plugins hung was answered in %s: %s", took, shortErr(err))
	default:
		sc.note("a submission to A with its plugins hung was accepted in %s", took)
	}
	return sc.pluginsBack(ctx, a, old, at, "hung"), nil
}

// pluginsBack waits, up to 30 s, until the host runs as many plugin
// processes as before, none of them old, and serves; it returns when.
func (sc *scene) pluginsBack(ctx context.Context, h *berthHost, old []int, at time.Time, how string) time.Time {
	err := waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		now := h.plugins()
		if len(now) < len(old) {
			return fmt.Errorf("%d of %d plugin processes", len(now), len(old))
		}
		for _, p := range now {
			if slices.Contains(old, p) {
				return fmt.Errorf("plugin %d still there", p)
			}
		}
		_, err := h.pools(ctx)
		return err
	})
	if err != nil {
		sc.defect("%d %s plugin processes of A not replaced: %v", len(old), how, err)
		return time.Now()
	}
	sc.note("A replaced its %d %s plugin processes in %s", len(old), how, time.Since(at).Round(10*time.Millisecond))
	return time.Now()
}

// redisOutage stops Redis while jobs run (SIGTERM, or SIGKILL with kill),
// keeps it down until a few jobs finished in the outage, and starts it
// again on the same port and data.
func redisOutage(kill bool) func(context.Context, *scene) (time.Time, error) {
	return func(ctx context.Context, sc *scene) (time.Time, error) {
		r := sc.redis[0]
		if err := sc.warm(ctx, sc.hosts[0], 2); err != nil {
			return time.Time{}, err
		}
		inFlight := 0
		for _, h := range sc.hosts {
			inFlight += len(sc.inFlight(h.plugins(), 0))
		}
		need := min(4, inFlight)
		at := time.Now()
		sc.at = at
		var err error
		if kill {
			err = r.kill9()
		} else {
			err = r.shutdown()
		}
		if err != nil {
			return time.Time{}, err
		}
		// Down for outage (as long as a service manager's restart takes),
		// and until a few runs finished in the outage.
		outage := sc.s.outage()
		_ = waitFor(ctx, outage+5*time.Second, 20*time.Millisecond, func() error {
			if n := sc.book.endedSince(at); n < need || time.Since(at) < outage {
				return fmt.Errorf("%d runs ended in the outage", n)
			}
			return nil
		})
		ended := sc.book.endedSince(at)
		if err := r.run(ctx); err != nil {
			return time.Time{}, err
		}
		sc.note("Redis (%s) down %s; %d PROBE runs ended meanwhile", r.persist, time.Since(at).Round(10*time.Millisecond), ended)
		return time.Now(), nil
	}
}

// redisLate starts host A with nothing on its Redis port, watches what it
// does for a few seconds, then starts Redis; a host that exited is started
// again, as a service manager would.
func redisLate(ctx context.Context, sc *scene) (time.Time, error) {
	r, err := newRedis(sc.s.procs, sc.dir, "redis", noPersistence, "")
	if err != nil {
		return time.Time{}, err
	}
	sc.redis = append(sc.redis, r)
	a, err := sc.startHost("A", hostOpts{redisURL: "redis://" + r.addr(), namespace: sc.ns})
	if err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	sc.at = start
	watch := 5 * time.Second
	answered := ""
	_ = waitFor(ctx, watch, 100*time.Millisecond, func() error {
		if !a.p.alive() {
			return nil
		}
		if answered == "" {
			if _, err := a.pools(ctx); err == nil {
				answered = "200"
			} else if api := (*client.APIError)(nil); errors.As(err, &api) {
				answered = fmt.Sprintf("HTTP %d", api.Status)
			}
		}
		return errors.New("still running")
	})
	exited := !a.p.alive()
	if exited {
		sc.defect("berth exits when Redis is unreachable at start (%v after %s): %q",
			a.p.exit, time.Since(start).Round(10*time.Millisecond), strings.Join(a.p.tail(1), ""))
	} else {
		api := "its API did not answer"
		if answered != "" {
			api = "GET /api/v1/stats answered " + answered
		}
		sc.note("berth kept running for %s without Redis; %s", watch, api)
	}
	if err := r.run(ctx); err != nil {
		return time.Time{}, err
	}
	up := time.Now()
	if exited {
		if err := sc.runHost(a); err != nil {
			return time.Time{}, err
		}
	}
	if err := a.waitServing(ctx, 30*time.Second); err != nil {
		return time.Time{}, err
	}
	if exited {
		sc.note("started again once Redis was up, it served in %s", time.Since(up).Round(10*time.Millisecond))
	} else {
		sc.note("it served %s after Redis came up", time.Since(up).Round(10*time.Millisecond))
	}
	sc.setTargets(a)
	return time.Now(), nil
}

// sentinelHosts starts a primary and a replica (AOF, appendfsync always,
// a password), a sentinel without a password, and two hosts that find the
// primary through the sentinel.
func sentinelHosts(ctx context.Context, sc *scene) error {
	const pw, name = "chaos-data-pw", "chaos"
	primary, err := newRedis(sc.s.procs, sc.dir, "primary", aofAlways, pw)
	if err != nil {
		return err
	}
	replica, err := newRedis(sc.s.procs, sc.dir, "replica", aofAlways, pw)
	if err != nil {
		return err
	}
	replica.replicaOf = primary.addr()
	sc.redis = append(sc.redis, primary, replica)
	if err := primary.run(ctx); err != nil {
		return err
	}
	if err := replica.run(ctx); err != nil {
		return err
	}
	if err := waitFor(ctx, 15*time.Second, 50*time.Millisecond, func() error {
		if s := replica.info(ctx, "replication", "master_link_status"); s != "up" {
			return fmt.Errorf("replica link %q", s)
		}
		return nil
	}); err != nil {
		return err
	}
	if sc.sent, err = startSentinel(ctx, sc.s.procs, sc.dir, name, primary); err != nil {
		return err
	}
	url := fmt.Sprintf("redis+sentinel://:%s@%s/%s", pw, sc.sent.addr(), name)
	return sc.startHosts(ctx, hostOpts{redisURL: url, namespace: sc.ns, replicaAcks: sentinelReplicaAcks}, "A", "B")
}

func sentinelFailover(ctx context.Context, sc *scene) (time.Time, error) {
	if err := sc.warm(ctx, sc.hosts[0], 2); err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	sc.at = at
	if err := sc.sent.failover(ctx, sc.redis[1]); err != nil {
		return time.Time{}, err
	}
	sc.note("the sentinel named the replica primary %s after SENTINEL FAILOVER", time.Since(at).Round(10*time.Millisecond))
	return time.Now(), nil
}

// fullDiskHosts mounts a 256 KiB tmpfs, fills it, and starts two hosts
// whose FILE job logs go there. A mount that fails skips the fault.
func fullDiskHosts(ctx context.Context, sc *scene) error {
	dir := filepath.Join(sc.dir, "joblogs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=256k,mode=0700"); err != nil {
		sc.skip = fmt.Sprintf("mount a tmpfs at %s: %v (needs root)", dir, err)
		return nil
	}
	sc.mounts = append(sc.mounts, dir)
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		return err
	}
	chunk := make([]byte, 4096)
	for i := 0; i < 1024; i++ { // at most 4 MiB, far more than the tmpfs
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	r, err := newRedis(sc.s.procs, sc.dir, "redis", noPersistence, "")
	if err != nil {
		return err
	}
	sc.redis = append(sc.redis, r)
	if err := r.run(ctx); err != nil {
		return err
	}
	return sc.startHosts(ctx, hostOpts{redisURL: "redis://" + r.addr(), namespace: sc.ns, fileLogs: dir}, "A", "B")
}

// logDiskFull: the disk is full from the start; the jobs must run all the
// same. Nothing recovers: the fault's time is when the load was running.
func logDiskFull(ctx context.Context, sc *scene) (time.Time, error) {
	if err := sc.warm(ctx, sc.hosts[0], 2); err != nil {
		return time.Time{}, err
	}
	sc.at = time.Now()
	return sc.at, nil
}

// checkLogs reads, from every host, the logs of a few DEMO jobs that
// succeeded: with the disk full, a log must be whole or say that it is
// incomplete (or the API must answer an error saying why), never a
// silent 200; and the service log must warn.
func checkLogs(ctx context.Context, sc *scene) {
	ids := sc.book.withStatus(demoJob, client.Success, 5)
	whole, flagged, silent, errs := 0, 0, 0, 0
	first := ""
	for _, id := range ids {
		for _, h := range sc.hosts {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			body, err := h.api.Log(rctx, id)
			cancel()
			switch text := string(body); {
			case err != nil:
				errs++
				if first == "" {
					first = h.name + ": " + shortErr(err)
				}
			case strings.Contains(text, "incomplete"):
				flagged++
			case strings.Contains(text, "DEMO job done"):
				whole++
			default:
				silent++
			}
		}
	}
	sc.note("GET /log of %d succeeded DEMO jobs on each of %d hosts: %d whole, %d saying they are incomplete, %d errors%s, %d silent (200 without the job's last line or a word of the loss)",
		len(ids), len(sc.hosts), whole, flagged, errs, map[bool]string{true: " (" + first + ")", false: ""}[first != ""], silent)
	if silent > 0 {
		why := ""
		if flagged == len(ids) && silent == len(ids) {
			why = " (each job's log says so on the host that ran it, and is silent on the other)"
		}
		sc.defect("%d log reads answered 200 without the job's last line and without saying the log is incomplete%s", silent, why)
	}
	warned := 0
	for _, h := range sc.hosts {
		n, _ := h.logCount("no space")
		warned += n
	}
	if warned == 0 {
		sc.defect("no host logged the full disk (no line with \"no space\")")
	} else {
		sc.note("the hosts logged %d lines about the full disk", warned)
	}
}
