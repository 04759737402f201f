package reaper_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/jobs"
	"github.com/berth-dev/berth/host/internal/reaper"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/fakeclock"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(redistest.WithCleanup(m)) }

type bundle struct {
	store *store.Store
	jobs  *jobs.Controller
	clock *fakeclock.Clock
	pool  *redis.Pool
	keys  store.Keys
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	pool := srv.Pool(t)
	clk := fakeclock.New(time.Unix(1_700_000_000, 0))
	// Leases outlast the tests' fake hours: the jobs' host is alive (the
	// recovery of expired leases has its own test).
	st := store.New(pool, store.Options{Namespace: srv.Namespace(t), Now: clk.Now, Lease: 48 * time.Hour})
	ctl := jobs.New(jobs.Options{Store: st, Runner: runner.New(runner.Options{}), Clock: clk})
	return &bundle{store: st, jobs: ctl, clock: clk, pool: pool, keys: st.Keys()}
}

func (b *bundle) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	c := b.pool.Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return v
}

func (b *bundle) running(t *testing.T, hook string) *job.Stats {
	t.Helper()
	now := b.store.Now()
	st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending, EnqueueTime: now,
		UpdateTime: now, Revision: now, WebHookURL: hook, Parameters: job.Parameters{"image": "demo"}}
	ctx := context.Background()
	if _, err := b.store.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	res, err := b.store.Start(ctx, st.ID)
	if err != nil || res.Outcome != store.Moved {
		t.Fatalf("Start = %+v, %v", res, err)
	}
	return res.Stats
}

// TestStaleRunningJobIsMarkedError runs the reaper on a fake clock: its
// passes come once per interval, and the lifecycle owner fails the running
// job that showed no progress for longer than max_job_duration.
func TestStaleRunningJobIsMarkedError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stale := b.running(t, "")
	r := reaper.New(reaper.Options{Store: b.store, Lifecycle: b.jobs, Clock: b.clock, Interval: time.Minute, MaxJobDuration: time.Hour})
	if res := r.Pass(context.Background()); res.Stale != 0 {
		t.Fatalf("a fresh job was taken as stale: %v", res)
	}
	b.clock.Advance(time.Hour + time.Second)
	fresh := b.running(t, "")
	r.Start(context.Background())
	defer r.Stop()
	if !b.clock.WaitTimers(1, 10*time.Second) {
		t.Fatal("the reaper never waited for its first pass")
	}
	b.clock.Advance(time.Minute) // the first pass is due
	got := waitFor(t, func() *job.Stats {
		s, _ := b.store.Get(context.Background(), stale.ID)
		return s
	}, func(s *job.Stats) bool { return s.Status != job.Running })
	if got.Status != job.Error || got.DieAt != b.clock.Now().Unix() || got.Revision != stale.Revision {
		t.Fatalf("stale job after the pass: %+v", got)
	}
	if got, _ := b.store.Get(context.Background(), fresh.ID); got.Status != job.Running {
		t.Fatalf("a fresh job became %s", got.Status)
	}
	// A check-in is progress.
	if _, err := b.store.Checkin(context.Background(), fresh.ID, fresh.Revision, "alive"); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(59 * time.Minute)
	if res := r.Pass(context.Background()); res.Stale != 0 {
		t.Fatalf("a job that checked in within max_job_duration was taken as stale: %v", res)
	}
}

// waitFor polls get until ok holds (bounded).
func waitFor[T any](t *testing.T, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("no change within 10s: %+v", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeadWorkerPoolJobsAreQueuedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	st := b.running(t, "")
	// A worker pool that took the job and died, as gocraft/work leaves it.
	pool := "deadbeefdeadbeefdeadbeef"
	entry := `{"name":"DEMO","id":"` + st.ID + `","t":1,"args":{"image":"demo"}}`
	b.do(t, "DEL", b.keys.Jobs("DEMO"))
	b.do(t, "SADD", b.keys.WorkerPools(), pool)
	b.do(t, "HSET", b.keys.Heartbeat(pool), "heartbeat_at", time.Now().Add(-time.Hour).Unix(), "started_at", 1,
		"job_names", "DEMO", "concurrency", 10, "worker_ids", "w", "host", "h", "pid", 1)
	b.do(t, "LPUSH", b.keys.Jobs("DEMO")+":"+pool+":inprogress", entry)
	b.do(t, "SET", b.keys.Jobs("DEMO")+":lock", 3)
	b.do(t, "HSET", b.keys.Jobs("DEMO")+":lock_info", pool, 1, "alive", 2)
	// And a healthy one, left alone.
	b.do(t, "SADD", b.keys.WorkerPools(), "alive")
	b.do(t, "HSET", b.keys.Heartbeat("alive"), "heartbeat_at", time.Now().Unix(), "job_names", "DEMO", "concurrency", 10)

	res := reaper.New(reaper.Options{Store: b.store, Lifecycle: b.jobs}).Pass(ctx)
	if res.DeadPools != 1 || res.Requeued != 1 {
		t.Fatalf("pass %v", res)
	}
	queued, _ := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs("DEMO"), 0, -1), nil)
	if len(queued) != 1 || queued[0] != entry {
		t.Fatalf("queue after the pass: %q", queued)
	}
	if lock, _ := redis.Int(b.do(t, "GET", b.keys.Jobs("DEMO")+":lock"), nil); lock != 2 {
		t.Fatalf("concurrency lock %d, want the dead pool's slot back (2)", lock)
	}
	pools, _ := redis.Strings(b.do(t, "SMEMBERS", b.keys.WorkerPools()), nil)
	if len(pools) != 1 || pools[0] != "alive" {
		t.Fatalf("worker pools after the pass: %q", pools)
	}
	// The next worker that takes it starts a new revision.
	again, err := b.store.Start(ctx, st.ID)
	if err != nil || again.Outcome != store.Moved || again.Stats.Revision <= st.Revision {
		t.Fatalf("restart after the reap: %+v, %v", again, err)
	}
}

func TestLaggingHookIsFiredAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	st := b.running(t, "http://core.invalid/hook")
	if _, err := b.store.Move(ctx, store.Change{ID: st.ID, Revision: st.Revision, To: job.Success, Reason: job.Succeeded}); err != nil {
		t.Fatal(err)
	}
	// Its events were lost.
	b.do(t, "DEL", b.keys.HookEvents(st.ID))
	b.do(t, "ZREM", b.keys.HooksDue(), st.ID)
	// Another job's receiver is up to date.
	ok := b.running(t, "http://core.invalid/hook")
	b.store.Move(ctx, store.Change{ID: ok.ID, Revision: ok.Revision, To: job.Success, Reason: job.Succeeded})
	for {
		ev, _, err := b.store.ClaimHook(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ev == nil {
			break
		}
		if err := b.store.AckHook(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i := 0; i < 100; i++ {
		n, wrapped, err := b.store.RefireHooks(ctx, 10000)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if wrapped {
			break
		}
	}
	if total != 1 {
		t.Fatalf("re-fired %d hooks, want 1 (the job whose events were lost)", total)
	}
	ev, _, err := b.store.ClaimHook(ctx, time.Minute)
	if err != nil || ev == nil || ev.Stats.ID != st.ID || ev.Stats.Status != job.Success {
		t.Fatalf("claimed %+v, %v", ev, err)
	}
}

func TestOnlyOneHostHoldsTheLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	got := 0
	for i := 0; i < 5; i++ {
		ok, err := b.store.TakeReaperLock(ctx, "host-"+strconv.Itoa(i), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("%d hosts took the lock", got)
	}
}

// A pass recovers a running job whose lease expired (its host stopped
// renewing it): it is queued again in a new revision, long before
// max_job_duration.
func TestRunningJobWhoseLeaseExpiredIsQueuedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ns := b.keys.WorkNamespace()
	gone := store.New(b.pool, store.Options{Namespace: ns[1 : len(ns)-1], Now: b.clock.Now, Holder: "gone", Lease: 10 * time.Second})
	ctx := context.Background()
	now := b.store.Now()
	st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending, EnqueueTime: now,
		UpdateTime: now, Revision: now, Parameters: job.Parameters{"image": "demo"}}
	if _, err := gone.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	b.do(t, "DEL", b.keys.Jobs("DEMO")) // the worker that took it
	started, err := gone.Start(ctx, st.ID)
	if err != nil || started.Outcome != store.Moved {
		t.Fatalf("Start = %+v, %v", started, err)
	}
	r := reaper.New(reaper.Options{Store: b.store, Lifecycle: b.jobs, Clock: b.clock, MaxJobDuration: time.Hour})
	if res := r.Pass(ctx); res.Recovered != 0 {
		t.Fatalf("a job whose lease holds was recovered: %v", res)
	}
	b.clock.Advance(11 * time.Second)
	if res := r.Pass(ctx); res.Recovered != 1 || res.Stale != 0 {
		t.Fatalf("pass after the lease expired: %v, want one recovered", res)
	}
	got, err := b.store.Get(ctx, st.ID)
	if err != nil || got.Status != job.Pending || got.Revision <= started.Stats.Revision {
		t.Fatalf("after the pass: %+v, %v", got, err)
	}
	if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO")), nil); n != 1 {
		t.Fatalf("queue holds %d entries, want the recovered job's", n)
	}
}
