package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(redistest.WithCleanup(m)) }

type bundle struct {
	store *Store
	pool  *redis.Pool
	keys  Keys
	now   *int64
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	now := int64(1_700_000_000)
	pool := srv.Pool(t)
	s := New(pool, Options{Namespace: srv.Namespace(t), Now: func() time.Time { return time.Unix(now, 0) },
		TTL: TTLs{Success: time.Hour, Stopped: 2 * time.Hour, Error: 3 * time.Hour}})
	return &bundle{store: s, pool: pool, keys: s.Keys(), now: &now}
}

func (b *bundle) do(t *testing.T, cmd string, args ...any) (any, error) {
	t.Helper()
	c := b.pool.Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v, nil
}

func (b *bundle) newJob(t *testing.T, mutate func(*job.Stats)) *job.Stats {
	t.Helper()
	st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending,
		EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now, Parameters: job.Parameters{"image": "demo", "n": 1.5}}
	st.RefLink = job.RefLink(st.ID)
	if mutate != nil {
		mutate(st)
	}
	if _, err := b.store.Create(context.Background(), st); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return st
}

// takenJob is newJob, its entry taken off its queue as a worker's fetch
// takes it.
func (b *bundle) takenJob(t *testing.T) *job.Stats {
	t.Helper()
	st := b.newJob(t, nil)
	_, _ = b.do(t, "DEL", b.keys.Jobs(st.Name))
	return st
}

// TestMoveAgreesWithCanMove runs the scripts' one status-moving helper
// (move, in luaPrelude) for every pair of statuses and revision order on a
// real stats hash, and compares what it did with job.CanMove.
func TestMoveAgreesWithCanMove(t *testing.T) {
	t.Parallel()
	b := setup(t)
	script := redis.NewScript(1, luaPrelude+`
local c = read(KEYS[1])
local ok = move(c, arg(1), tonumber(arg(2)), 'test')
return {ok and 1 or 0, #EVENTS}`)
	statuses := append(append([]job.Status{}, job.Statuses...), "Bogus")
	c := b.pool.Get()
	defer c.Close()
	n := 0
	for _, from := range statuses {
		for _, to := range statuses {
			for _, revs := range [][2]int64{{10, 9}, {10, 10}, {10, 11}} {
				key := b.keys.Stats(job.NewID())
				if _, err := c.Do("HSET", key, "id", "x", "name", "DEMO", "kind", "Generic", "status", string(from), "revision", revs[0]); err != nil {
					t.Fatal(err)
				}
				args := append(append([]any{key}, b.store.env(b.store.Clock())...), string(to), revs[1])
				got, err := redis.Ints(script.Do(c, args...))
				if err != nil {
					t.Fatal(err)
				}
				want := job.CanMove(from, revs[0], to, revs[1])
				if (got[0] == 1) != want {
					t.Errorf("%s@%d -> %s@%d: move says %v, job.CanMove says %v", from, revs[0], to, revs[1], got[0] == 1, want)
				}
				// A move writes the status and makes one event; a refusal
				// changes nothing.
				status, _ := redis.String(c.Do("HGET", key, "status"))
				rev, _ := redis.Int64(c.Do("HGET", key, "revision"))
				wantStatus, wantRev, wantEvents := from, revs[0], 0
				if want {
					wantStatus, wantRev, wantEvents = to, revs[1], 1
				}
				if job.Status(status) != wantStatus || rev != wantRev || got[1] != wantEvents {
					t.Errorf("%s@%d -> %s@%d: the hash holds %s@%d and %d events, want %s@%d and %d",
						from, revs[0], to, revs[1], status, rev, got[1], wantStatus, wantRev, wantEvents)
				}
				n++
			}
		}
	}
	if n != 7*7*3 {
		t.Fatalf("checked %d cases", n)
	}
}

func TestCreateQueuesWithStatsAndGetReadsThemBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.newJob(t, func(s *job.Stats) {
		s.WebHookURL = "http://core/hook"
		s.UpstreamJobID = "0123456789abcdef01234567"
		s.Unique = true
	})
	got, err := b.store.Get(context.Background(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", st) {
		t.Fatalf("Get = %+v\nwant  %+v", got, st)
	}
	entries, _ := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs("DEMO"), 0, -1))
	// Not flagged unique: gocraft/work's worker would drop the claim.
	want := fmt.Sprintf(`{"name":"DEMO","id":"%s","t":%d,"args":{"image":"demo","n":1.5}}`, st.ID, *b.now)
	if len(entries) != 1 || entries[0] != want {
		t.Fatalf("queue = %q, want [%s]", entries, want)
	}
	if known, _ := redis.Strings(b.do(t, "SMEMBERS", b.keys.KnownJobs())); len(known) != 1 || known[0] != "DEMO" {
		t.Fatalf("known_jobs = %q", known)
	}
	if ttl, _ := redis.Int(b.do(t, "TTL", b.keys.Stats(st.ID))); ttl != -1 {
		t.Fatalf("a pending job's stats have TTL %d, want none", ttl)
	}
	if _, err := b.store.Get(context.Background(), job.NewID()); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v, want ErrNotFound", err)
	}
}

func TestCreateScheduledWaitsInTheScheduledSet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.newJob(t, func(s *job.Stats) {
		s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+90
	})
	if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO"))); n != 0 {
		t.Fatalf("a scheduled job is in the queue")
	}
	score, _ := redis.Int64(b.do(t, "ZSCORE", b.keys.Scheduled(), mustEntry(t, st)))
	if score != *b.now+90 {
		t.Fatalf("scheduled score = %d, want run_at %d", score, *b.now+90)
	}
}

func mustEntry(t *testing.T, st *job.Stats) []byte {
	t.Helper()
	e, err := entry(st)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestUniqueDuplicateIsAConflictNamingTheFirstJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.newJob(t, func(s *job.Stats) { s.Unique = true })
	dup := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending, Unique: true,
		Parameters: job.Parameters{"n": 1.5, "image": "demo"}}
	_, err := b.store.Create(context.Background(), dup)
	var conflict *job.ConflictError
	if !errors.As(err, &conflict) || conflict.ExistingID != first.ID {
		t.Fatalf("Create of a duplicate = %v, want a ConflictError naming %s", err, first.ID)
	}
	if _, err := b.store.Get(context.Background(), dup.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("the refused duplicate has stats: %v", err)
	}
	// Other parameters are another job.
	b.newJob(t, func(s *job.Stats) { s.Unique = true; s.Parameters = job.Parameters{"image": "demo2"} })
}

func TestStartMovesToRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *bundle, st *job.Stats)
		want    Outcome
		wantRev func(old, now int64) int64
	}{
		{"Pending", func(*testing.T, *bundle, *job.Stats) {}, Moved, func(old, _ int64) int64 { return old }},
		{"RunningWhoseHostDied", func(t *testing.T, b *bundle, st *job.Stats) {
			if _, err := b.store.Start(ctx, st.ID); err != nil {
				t.Fatal(err)
			}
		}, Moved, func(old, _ int64) int64 { return old + 1 }},
		{"WaitingForRetry", func(t *testing.T, b *bundle, st *job.Stats) {
			b.store.Start(ctx, st.ID)
			if r, err := move(ctx, b.store, st.ID, st.Revision, job.Error, 1700000100); err != nil || r.Outcome != Moved {
				t.Fatalf("Move to Error = %+v, %v", r, err)
			}
			*b.now += 100
		}, Moved, func(_, now int64) int64 { return now }},
		{"FinalError", func(t *testing.T, b *bundle, st *job.Stats) {
			b.store.Start(ctx, st.ID)
			move(ctx, b.store, st.ID, st.Revision, job.Error, 0)
		}, Refused, nil},
		{"Stopped", func(t *testing.T, b *bundle, st *job.Stats) {
			if out, _, err := b.store.Stop(ctx, st, job.ActionStop); err != nil || out != StopDone {
				t.Fatalf("Stop = %v, %v", out, err)
			}
		}, Refused, nil},
		{"StopAskedWhileItsHostDied", func(t *testing.T, b *bundle, st *job.Stats) {
			b.store.Start(ctx, st.ID)
			if out, _, err := b.store.Stop(ctx, st, job.ActionCancel); err != nil || out != StopSignalled {
				t.Fatalf("Stop = %v, %v", out, err)
			}
		}, StoppedOnStart, func(old, _ int64) int64 { return old }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st := b.newJob(t, nil)
			tc.prepare(t, b, st)
			r, err := b.store.Start(ctx, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != tc.want {
				t.Fatalf("Start outcome = %v (current %s), want %v", r.Outcome, r.Current, tc.want)
			}
			if tc.wantRev == nil {
				return
			}
			if want := tc.wantRev(st.Revision, *b.now); r.Stats.Revision != want {
				t.Fatalf("revision = %d, want %d", r.Stats.Revision, want)
			}
			wantStatus := job.Running
			if tc.want == StoppedOnStart {
				wantStatus = job.Stopped
				if r.OP != job.ActionCancel {
					t.Fatalf("op = %q, want cancel", r.OP)
				}
			}
			if r.Stats.Status != wantStatus {
				t.Fatalf("status = %s, want %s", r.Stats.Status, wantStatus)
			}
		})
	}
	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if r, err := b.store.Start(ctx, job.NewID()); err != nil || r.Outcome != Missing {
			t.Fatalf("Start = %+v, %v", r, err)
		}
	})
}

// Start says how many entries wait in the job's queue (the backlog that
// makes a host wake its idle workers).
func TestStartCountsTheBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.takenJob(t)
	for range 3 {
		b.newJob(t, nil)
	}
	b.newJob(t, func(s *job.Stats) { s.Name = "OTHER" })
	r, err := b.store.Start(ctx, st.ID)
	if err != nil || r.Outcome != Moved {
		t.Fatalf("Start = %+v, %v", r, err)
	}
	if r.Waiting != 3 {
		t.Fatalf("Waiting = %d, want the 3 DEMO entries left in its queue", r.Waiting)
	}
	// Entries that wait for the type's concurrency limit wait for no
	// worker (gocraft/work's fetch counted the started job in :lock).
	again := b.newJob(t, nil)
	_, _ = b.do(t, "SET", b.keys.MaxConcurrency("DEMO"), 2)
	_, _ = b.do(t, "SET", b.keys.Lock("DEMO"), 2)
	if r, err := b.store.Start(ctx, again.ID); err != nil || r.Outcome != Moved || r.Waiting != 0 {
		t.Fatalf("Start at the concurrency limit = %+v, %v; want Moved, Waiting 0", r, err)
	}
	_, _ = b.do(t, "SET", b.keys.Lock("DEMO"), 1)
	if r, _ := b.store.Start(ctx, b.newJob(t, nil).ID); r.Waiting != 5 {
		t.Fatalf("Waiting = %d under the concurrency limit, want the 5 DEMO entries", r.Waiting)
	}
}

func TestFinalStatusesGetTheirTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		to  job.Status
		ttl int
	}{{job.Success, 3600}, {job.Stopped, 7200}, {job.Error, 10800}} {
		t.Run(string(tc.to), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st := b.newJob(t, nil)
			b.store.Start(ctx, st.ID)
			r, err := move(ctx, b.store, st.ID, st.Revision, tc.to, 0)
			if err != nil || r.Outcome != Moved || r.Stats.Status != tc.to {
				t.Fatalf("Move = %+v, %v", r, err)
			}
			if ttl, _ := redis.Int(b.do(t, "TTL", b.keys.Stats(st.ID))); ttl != tc.ttl {
				t.Fatalf("TTL = %d, want %d", ttl, tc.ttl)
			}
			// A final status never changes to another within the revision.
			for _, other := range []job.Status{job.Success, job.Stopped, job.Error, job.Running} {
				if other == tc.to {
					continue
				}
				if r, _ := move(ctx, b.store, st.ID, st.Revision, other, 0); r.Outcome != Refused || r.Current != tc.to {
					t.Fatalf("%s -> %s: %+v, want Refused", tc.to, other, r)
				}
			}
			if r, _ := move(ctx, b.store, st.ID, st.Revision, tc.to, 0); r.Outcome != Same {
				t.Fatalf("%s -> %s again: %+v, want Same", tc.to, tc.to, r)
			}
		})
	}
}

func TestRequeueStartsANewRevisionAndQueuesAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.takenJob(t)
	b.store.Start(ctx, st.ID)
	r, err := b.store.Requeue(ctx, st)
	if err != nil || r.Outcome != Moved || r.Stats.Status != job.Pending || r.Stats.Revision != st.Revision+1 {
		t.Fatalf("Requeue = %+v, %v", r, err)
	}
	if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO"))); n != 1 {
		t.Fatalf("queue length %d after Requeue, want 1", n)
	}
}

// check_in_at is the second of the check-in, never ahead of the clock:
// check-ins within a second share it, and each run starts without one.
func TestCheckinAtFollowsTheClockAndResetsPerRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.newJob(t, nil)
	b.store.Start(ctx, st.ID)
	for i := 0; i < 5; i++ {
		r, err := b.store.Checkin(ctx, st.ID, st.Revision, "step "+strconv.Itoa(i))
		if err != nil || r.Outcome != Moved {
			t.Fatalf("Checkin = %+v, %v", r, err)
		}
		if r.Stats.CheckInAt != *b.now || r.Stats.CheckIn != "step "+strconv.Itoa(i) {
			t.Fatalf("check-in %d within one second: check_in_at %d (now %d), check_in %q", i, r.Stats.CheckInAt, *b.now, r.Stats.CheckIn)
		}
	}
	*b.now += 3
	if r, _ := b.store.Checkin(ctx, st.ID, st.Revision, "later"); r.Stats.CheckInAt != *b.now {
		t.Fatalf("check-in 3 s later at %d, want %d", r.Stats.CheckInAt, *b.now)
	}
	if seq, _ := redis.Int(b.do(t, "HGET", b.keys.Stats(st.ID), "check_in_seq")); seq != 6 {
		t.Fatalf("check_in_seq %d after 6 check-ins", seq)
	}
	if r, _ := b.store.Checkin(ctx, st.ID, st.Revision-1, "old revision"); r.Outcome != Refused {
		t.Fatalf("check-in of an old revision: %+v, want Refused", r)
	}
	// A new run (the host died and another worker took the job) starts
	// with no check-in.
	r, _ := b.store.Start(ctx, st.ID)
	got, _ := b.store.Get(ctx, st.ID)
	if r.Outcome != Moved || got.CheckIn != "" || got.CheckInAt != 0 {
		t.Fatalf("after a new run's start: %+v, check_in %q at %d; want none", r, got.CheckIn, got.CheckInAt)
	}
	if n, _ := redis.Int(b.do(t, "HEXISTS", b.keys.Stats(st.ID), "check_in_seq")); n != 0 {
		t.Fatal("check_in_seq kept across runs")
	}
	move(ctx, b.store, st.ID, r.Stats.Revision, job.Success, 0)
	if r, _ := b.store.Checkin(ctx, st.ID, r.Stats.Revision, "too late"); r.Outcome != Refused {
		t.Fatalf("check-in after Success: %+v, want Refused", r)
	}
}

func TestKnownJobsAreAddedOnceInAWhile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	known := func() []string {
		names, _ := redis.Strings(b.do(t, "SMEMBERS", b.keys.KnownJobs()))
		return names
	}
	b.newJob(t, nil)
	if got := known(); !slices.Equal(got, []string{"DEMO"}) {
		t.Fatalf("known_jobs after the first job = %q", got)
	}
	_, _ = b.do(t, "DEL", b.keys.KnownJobs())
	b.newJob(t, nil)
	if got := known(); len(got) != 0 {
		t.Fatalf("known_jobs = %q: a name added a moment ago was added again", got)
	}
	*b.now += int64(knownFor/time.Second) + 1
	b.newJob(t, nil)
	if got := known(); !slices.Equal(got, []string{"DEMO"}) {
		t.Fatalf("known_jobs = %q: a name was not added again after %s", got, knownFor)
	}
}

func TestCheckinsOfOneStepKeepTheirOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.newJob(t, nil)
	r0, _ := b.store.Start(ctx, st.ID)
	rev := r0.Stats.Revision
	r, err := b.store.Checkin(ctx, st.ID, rev, "one", "two", "three")
	if err != nil || r.Outcome != Moved || r.Stats.CheckIn != "three" {
		t.Fatalf("Checkin of three = %+v, %v; want Moved, keeping the last", r, err)
	}
	var got []string
	for _, e := range r.Events {
		if e.Reason != job.CheckedIn {
			t.Fatalf("event %+v of a check-in", e)
		}
		got = append(got, e.CheckIn)
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("check-in events %q, want one,two,three in order", got)
	}
	s, _ := b.store.Get(ctx, st.ID)
	if s.CheckIn != "three" || s.CheckInAt != r.Stats.CheckInAt || s.CheckInAt != *b.now {
		t.Fatalf("stats check_in %q at %d (answer %d, now %d): want the last, at the clock's second", s.CheckIn, s.CheckInAt, r.Stats.CheckInAt, *b.now)
	}
	if _, err := b.store.Checkin(ctx, st.ID, rev); err == nil {
		t.Fatal("a check-in with no message was accepted")
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("PendingLeavesItsQueue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.newJob(t, func(s *job.Stats) { s.Unique = true })
		out, _, err := b.store.Stop(ctx, st, job.ActionStop)
		got, _ := b.store.Get(ctx, st.ID)
		if err != nil || out != StopDone || got.Status != job.Stopped {
			t.Fatalf("Stop = %v, %+v, %v", out, got, err)
		}
		if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO"))); n != 0 {
			t.Fatalf("queue length %d after stop", n)
		}
		uk, _ := b.keys.Unique("DEMO", st.Parameters)
		if n, _ := redis.Int(b.do(t, "EXISTS", uk)); n != 0 {
			t.Fatal("the unique key outlived the stopped job")
		}
		if ttl, _ := redis.Int(b.do(t, "TTL", b.keys.Stats(st.ID))); ttl != 7200 {
			t.Fatalf("TTL = %d", ttl)
		}
	})
	t.Run("ScheduledLeavesTheScheduledSet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.newJob(t, func(s *job.Stats) { s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+60 })
		if out, _, err := b.store.Stop(ctx, st, job.ActionCancel); err != nil || out != StopDone {
			t.Fatalf("Stop = %v, %v", out, err)
		}
		if n, _ := redis.Int(b.do(t, "ZCARD", b.keys.Scheduled())); n != 0 {
			t.Fatalf("scheduled set has %d entries after stop", n)
		}
	})
	t.Run("WaitingForRetryLeavesTheRetrySet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.newJob(t, nil)
		b.store.Start(ctx, st.ID)
		move(ctx, b.store, st.ID, st.Revision, job.Error, *b.now+30)
		// gocraft/work's worker re-serialises the entry with its failure.
		_, _ = b.do(t, "ZADD", b.keys.Retry(), *b.now+31, fmt.Sprintf(`{"name":"DEMO","id":"%s","t":1,"args":{},"fails":1,"err":"x"}`, st.ID))
		_, _ = b.do(t, "ZADD", b.keys.Retry(), *b.now+31, `{"name":"DEMO","id":"someone-else","t":1,"args":{}}`)
		out, _, err := b.store.Stop(ctx, st, job.ActionStop)
		got, _ := b.store.Get(ctx, st.ID)
		if err != nil || out != StopDone || got.Status != job.Stopped || got.Revision != st.Revision {
			t.Fatalf("Stop = %v, %+v, %v; want Stopped in its own revision %d (a stop is not one more run)", out, got, err, st.Revision)
		}
		if n, _ := redis.Int(b.do(t, "ZCARD", b.keys.Retry())); n != 1 {
			t.Fatalf("retry set has %d entries after stop, want only the other job's", n)
		}
	})
	t.Run("RunningIsSignalled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.newJob(t, nil)
		b.store.Start(ctx, st.ID)
		psc := redis.PubSubConn{Conn: b.pool.Get()}
		defer psc.Close()
		if err := psc.Subscribe(b.keys.Signals()); err != nil {
			t.Fatal(err)
		}
		if _, ok := psc.Receive().(redis.Subscription); !ok {
			t.Fatal("no subscription confirmation")
		}
		out, _, err := b.store.Stop(ctx, st, job.ActionCancel)
		if err != nil || out != StopSignalled {
			t.Fatalf("Stop = %v, %v", out, err)
		}
		msg, ok := psc.Receive().(redis.Message)
		if !ok || string(msg.Data) != "cancel "+st.ID {
			t.Fatalf("signal = %#v", msg)
		}
		ops, err := b.store.OPCommands(ctx, []string{st.ID, job.NewID()})
		if err != nil || len(ops) != 2 || ops[0] != job.ActionCancel || ops[1] != "" {
			t.Fatalf("OPCommands = %q, %v", ops, err)
		}
		got, _ := b.store.Get(ctx, st.ID)
		if got.Status != job.Running {
			t.Fatalf("a signalled job is %s; its runner ends it", got.Status)
		}
	})
	// A stop that reaches a running job just as its run ends (the runner
	// is recording a failure, a snooze or a shutdown's requeue) is not
	// lost: the job ends Stopped, queued nowhere. A run that ended for
	// good keeps its status.
	t.Run("RunningThatEndsWithoutHearingIt", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name   string
			end    func(b *bundle, st *job.Stats) (Result, error)
			status job.Status
		}{
			{"RetryWait", func(b *bundle, st *job.Stats) (Result, error) {
				return move(ctx, b.store, st.ID, st.Revision, job.Error, *b.now+30)
			}, job.Stopped},
			{"Snooze", func(b *bundle, st *job.Stats) (Result, error) {
				e, _ := entryOf(st)
				return b.store.Move(ctx, Change{ID: st.ID, Next: true, To: job.Scheduled, Reason: job.Snoozed,
					Set: Fields{FieldRunAt: strconv.FormatInt(*b.now+30, 10)}, Schedule: e, RunAt: *b.now + 30})
			}, job.Stopped},
			{"Requeue", func(b *bundle, st *job.Stats) (Result, error) { return b.store.Requeue(ctx, st) }, job.Stopped},
			{"FinalError", func(b *bundle, st *job.Stats) (Result, error) {
				return move(ctx, b.store, st.ID, st.Revision, job.Error, 0)
			}, job.Error},
			{"Success", func(b *bundle, st *job.Stats) (Result, error) {
				return move(ctx, b.store, st.ID, st.Revision, job.Success, 0)
			}, job.Success},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				st := b.takenJob(t)
				b.store.Start(ctx, st.ID)
				if out, _, err := b.store.Stop(ctx, st, job.ActionStop); err != nil || out != StopSignalled {
					t.Fatalf("Stop = %v, %v", out, err)
				}
				r, err := tc.end(b, st)
				if err != nil || r.Outcome != Moved || r.Stats.Status != tc.status {
					t.Fatalf("the end of the run = %+v, %v; want Moved to %s", r, err, tc.status)
				}
				got, _ := b.store.Get(ctx, st.ID)
				if got.Status != tc.status || got.Revision != st.Revision {
					t.Fatalf("the job is %s in revision %d, want %s in %d", got.Status, got.Revision, tc.status, st.Revision)
				}
				for _, k := range []string{b.keys.Retry(), b.keys.Scheduled()} {
					if n, _ := redis.Int(b.do(t, "ZCARD", k)); n != 0 {
						t.Fatalf("%s holds %d entries, want none", k, n)
					}
				}
				if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO"))); n != 0 {
					t.Fatalf("the queue holds %d entries, want none", n)
				}
				if ttl := b.ttl(t, b.keys.Stats(st.ID)); ttl <= 0 {
					t.Fatalf("the ended job's TTL = %d, want one", ttl)
				}
			})
		}
	})
	t.Run("FinalIsLeftAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.newJob(t, nil)
		b.store.Start(ctx, st.ID)
		move(ctx, b.store, st.ID, st.Revision, job.Success, 0)
		if out, _, err := b.store.Stop(ctx, st, job.ActionStop); err != nil || out != StopFinal {
			t.Fatalf("Stop = %v, %v", out, err)
		}
		got, _ := b.store.Get(ctx, st.ID)
		if got.Status != job.Success {
			t.Fatalf("status = %s", got.Status)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := &job.Stats{ID: job.NewID(), Name: "DEMO"}
		if _, _, err := b.store.Stop(ctx, st, job.ActionStop); !errors.Is(err, job.ErrNotFound) {
			t.Fatalf("Stop of a missing job: %v", err)
		}
	})
}

func TestKeysAreNamespacedAndBraced(t *testing.T) {
	t.Parallel()
	k := NewKeys("ns")
	for _, key := range []string{k.Stats("x"), k.Jobs("DEMO"), k.Scheduled(), k.Retry(), k.KnownJobs(), k.Signals(), k.Executions("p")} {
		if !strings.HasPrefix(key, "{ns}:") {
			t.Errorf("key %q is not under {ns}:", key)
		}
	}
	if k.WorkNamespace() != "{ns}" {
		t.Fatalf("WorkNamespace = %q", k.WorkNamespace())
	}
	if got := k.StatsID(k.Stats("abc")); got != "abc" {
		t.Fatalf("StatsID = %q", got)
	}
	uk, _ := k.Unique("DEMO", map[string]any{"b": 1, "a": "<x>"})
	if want := "{ns}:unique:DEMO:{\"a\":\"\\u003cx\\u003e\",\"b\":1}\n"; uk != want {
		t.Fatalf("unique key = %q, want %q (gocraft/work's spelling)", uk, want)
	}
}
