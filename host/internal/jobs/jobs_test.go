package jobs_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/jobs"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/fakeclock"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(redistest.WithCleanup(m)) }

// plugins serves fixed job types; Validate refuses params with "bad".
type plugins struct{ types map[string]pluginhost.JobType }

func (p plugins) JobType(name string) (pluginhost.JobType, bool) {
	t, ok := p.types[name]
	return t, ok
}
func (p plugins) JobTypes() []pluginhost.JobType {
	var out []pluginhost.JobType
	for _, t := range p.types {
		out = append(out, t)
	}
	return out
}
func (p plugins) Validate(_ context.Context, name string, params []byte) error {
	if strings.Contains(string(params), "bad") {
		return &pluginhost.ValidationError{Job: name, Reason: "bad is bad"}
	}
	return nil
}

// scripted is a Runner whose attempts end as the test says, without a
// plugin; it records what it was asked.
type scripted struct {
	mu       sync.Mutex
	outcome  func(a runner.Attempt) runner.Outcome
	attempts []runner.Attempt
	signals  []string
	reserved map[string]bool
	// onRevoke, when set, is called by Revoke.
	onRevoke func(id, why string)
}

func (s *scripted) Reserve(id string) (func(), bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserved[id] {
		return nil, false
	}
	s.reserved[id] = true
	return func() { s.mu.Lock(); delete(s.reserved, id); s.mu.Unlock() }, true
}

func (s *scripted) Run(_ context.Context, a runner.Attempt) (runner.Outcome, error) {
	s.mu.Lock()
	s.attempts = append(s.attempts, a)
	out := s.outcome
	s.mu.Unlock()
	a.Log.Log(joblog.Info, "the job ran")
	return out(a), nil
}

func (s *scripted) Signal(id string, op job.Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signals = append(s.signals, string(op)+" "+id)
}

func (s *scripted) Revoke(id, why string) bool {
	s.mu.Lock()
	s.signals = append(s.signals, "revoke "+id)
	on := s.onRevoke
	s.mu.Unlock()
	if on != nil {
		on(id, why)
	}
	return on != nil
}

func (s *scripted) Running() []string { return nil }

type bundle struct {
	ctl    *jobs.Controller
	st     *store.Store
	clock  *fakeclock.Clock
	runner *scripted
	logs   *joblog.Manager
	pool   *redis.Pool
	events *events.Subscription
	// backlogs are what the controller reported through Backlog.
	backlogMu sync.Mutex
	backlogs  []int
}

var types = map[string]pluginhost.JobType{
	"RETRY":  {Name: "RETRY", MaxFails: 3, ShouldRetry: true},
	"ONCE":   {Name: "ONCE", MaxFails: 5, ShouldRetry: false},
	"DEFALT": {Name: "DEFALT", ShouldRetry: true}, // MaxFails 0: the host default
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	pool := srv.Pool(t)
	clk := fakeclock.New(time.Unix(1_700_000_000, 0))
	st := store.New(pool, store.Options{Namespace: srv.Namespace(t), Now: clk.Now})
	r := joblog.NewRedis(joblog.RedisOptions{Pool: pool, Key: st.Keys().JobLog, Level: joblog.Debug, TTL: time.Hour})
	logs := joblog.NewManager([]joblog.Backend{r}, r, nil, time.Hour, nil)
	bus := events.New()
	sub := bus.Subscribe(1000)
	t.Cleanup(sub.Close)
	run := &scripted{reserved: map[string]bool{}, outcome: func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Succeeded} }}
	b := &bundle{st: st, clock: clk, runner: run, logs: logs, pool: pool, events: sub}
	b.ctl = jobs.New(jobs.Options{Store: st, Events: bus, Plugins: plugins{types}, Runner: run, Logs: logs, Clock: clk,
		Properties: map[string]string{"core_url": "http://core"},
		Retry:      backoff.Policy{Base: 10 * time.Second, Max: time.Minute, Jitter: 0.25, Rand: func() float64 { return 0.5 }},
		Backlog: func(n int) {
			b.backlogMu.Lock()
			b.backlogs = append(b.backlogs, n)
			b.backlogMu.Unlock()
		}})
	t.Cleanup(b.ctl.Shutdown)
	return b
}

// submit submits a Generic job and drains its event.
func (b *bundle) submit(t *testing.T, name string, params job.Parameters) *job.Stats {
	t.Helper()
	st, err := b.ctl.Submit(context.Background(), &job.RequestJob{Name: name, Parameters: params, Metadata: &job.Metadata{Kind: job.Generic}})
	if err != nil {
		t.Fatalf("Submit %s: %v", name, err)
	}
	b.expect(t, st.ID, job.Submitted)
	return st
}

// expect takes the next events off the bus and checks their reasons.
func (b *bundle) expect(t *testing.T, id string, reasons ...job.Reason) []job.Event {
	t.Helper()
	var got []job.Event
	for range reasons {
		select {
		case e := <-b.events.C():
			got = append(got, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("job %s: only events %+v, want reasons %v", id, got, reasons)
		}
	}
	for i, e := range got {
		if e.JobID != id || e.Reason != reasons[i] {
			t.Fatalf("job %s: event %d is %s %s (%s -> %s), want %s", id, i, e.JobID, e.Reason, e.From, e.To, reasons[i])
		}
	}
	return got
}

func (b *bundle) noEvents(t *testing.T) {
	t.Helper()
	select {
	case e := <-b.events.C():
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

// take hands the job to Handle as a worker would, with its entry.
func (b *bundle) take(t *testing.T, st *job.Stats, fails int64) {
	t.Helper()
	if err := b.ctl.Handle(queue.Job{Name: st.Name, ID: st.ID, EnqueuedAt: st.EnqueueTime, Fails: fails}); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

func (b *bundle) log(t *testing.T, id string) string {
	t.Helper()
	text, err := b.logs.Get(context.Background(), id, 1<<20)
	if err != nil {
		t.Fatalf("log of %s: %v", id, err)
	}
	return string(text)
}

func (b *bundle) retrySet(t *testing.T) map[string]int64 {
	t.Helper()
	c := b.pool.Get()
	defer c.Close()
	v, err := redis.Int64Map(c.Do("ZRANGE", b.st.Keys().Retry(), 0, -1, "WITHSCORES"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestASuccessfulAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.submit(t, "RETRY", job.Parameters{"x": 1.0})
	b.take(t, st, 0)
	evs := b.expect(t, st.ID, job.Started, job.Succeeded)
	if evs[1].From != job.Running || evs[1].To != job.Success || evs[1].Revision != st.Revision {
		t.Fatalf("final event %+v", evs[1])
	}
	got, _ := b.st.Get(context.Background(), st.ID)
	if got.Status != job.Success {
		t.Fatalf("status %s", got.Status)
	}
	a := b.runner.attempts[0]
	if a.Number != 1 || a.Revision != st.Revision || string(a.Params) != `{"x":1}` {
		t.Fatalf("attempt %+v", a)
	}
	want := map[string]string{"core_url": "http://core", "job_id": st.ID, "job_name": "RETRY", "revision": strconv.FormatInt(st.Revision, 10)}
	for k, v := range want {
		if a.Properties[k] != v {
			t.Fatalf("property %s = %q, want %q (all: %v)", k, a.Properties[k], v, a.Properties)
		}
	}
	if log := b.log(t, st.ID); !strings.Contains(log, "attempt 1 of RETRY started") || !strings.Contains(log, "the job ran") {
		t.Fatalf("log:\n%s", log)
	}
}

// A start that leaves entries in the job's queue reports them (the worker
// pool wakes idle workers for a backlog); one that leaves none does not.
func TestAStartReportsTheBacklog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.submit(t, "RETRY", job.Parameters{"x": 1.0})
	for range 3 {
		b.submit(t, "RETRY", job.Parameters{"x": 2.0})
	}
	c := b.pool.Get()
	defer c.Close()
	if _, err := c.Do("RPOP", b.st.Keys().Jobs("RETRY")); err != nil { // the worker's fetch
		t.Fatal(err)
	}
	b.take(t, first, 0)
	b.expect(t, first.ID, job.Started, job.Succeeded)
	if _, err := c.Do("DEL", b.st.Keys().Jobs("RETRY")); err != nil {
		t.Fatal(err)
	}
	last := b.submit(t, "ONCE", nil)
	if _, err := c.Do("DEL", b.st.Keys().Jobs("ONCE")); err != nil {
		t.Fatal(err)
	}
	b.take(t, last, 0)
	b.expect(t, last.ID, job.Started, job.Succeeded)
	b.backlogMu.Lock()
	defer b.backlogMu.Unlock()
	if !slices.Equal(b.backlogs, []int{3}) {
		t.Fatalf("backlogs reported %v, want [3]: the 3 entries the first start left, none for the last", b.backlogs)
	}
}

// TestTheRetryDecision: the one place that decides retries, with its wait
// on the injected clock.
func TestTheRetryDecision(t *testing.T) {
	t.Parallel()
	fail := func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Failed, Err: "boom"} }
	tests := []struct {
		name      string
		job       string
		fails     int64 // failed attempts before this one
		wantRetry bool
		wantWait  time.Duration
	}{
		{"FirstFailureWaitsTheBase", "RETRY", 0, true, 11250 * time.Millisecond}, // 10s + 0.25×0.5 jitter
		{"SecondFailureDoubles", "RETRY", 1, true, 22500 * time.Millisecond},
		{"ThirdFailureIsTheLast", "RETRY", 2, false, 0},
		{"ShouldRetryFalse", "ONCE", 0, false, 0},
		{"HostDefaultMaxFails", "DEFALT", 3, false, 0},
		{"BelowTheHostDefault", "DEFALT", 2, true, 45 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.runner.outcome = fail
			st := b.submit(t, tc.job, nil)
			b.take(t, st, tc.fails)
			now := b.clock.Now()
			if !tc.wantRetry {
				evs := b.expect(t, st.ID, job.Started, job.Failed)
				if evs[1].To != job.Error || evs[1].Detail != "boom" || evs[1].RetryAt != 0 {
					t.Fatalf("final failure event %+v", evs[1])
				}
				if len(b.retrySet(t)) != 0 {
					t.Fatalf("a job that is not retried is in the retry set: %v", b.retrySet(t))
				}
				return
			}
			evs := b.expect(t, st.ID, job.Started, job.RetryWait)
			wantAt := now.Add(tc.wantWait)
			retryAt := wantAt.Unix()
			if wantAt.Nanosecond() > 0 {
				retryAt++
			}
			if evs[1].To != job.Error || evs[1].RetryAt != retryAt {
				t.Fatalf("retry event %+v, want Error with RetryAt %d (%v after %v)", evs[1], retryAt, tc.wantWait, now)
			}
			set := b.retrySet(t)
			if len(set) != 1 {
				t.Fatalf("retry set %v, want the job's entry", set)
			}
			for entry, score := range set {
				if score != retryAt || !strings.Contains(entry, `"id":"`+st.ID+`"`) ||
					!strings.Contains(entry, `"fails":`+strconv.FormatInt(tc.fails+1, 10)) || !strings.Contains(entry, `"err":"boom"`) {
					t.Fatalf("retry entry %s at %d, want the job with fails %d and its error at %d", entry, score, tc.fails+1, retryAt)
				}
			}
			if log := b.log(t, st.ID); !strings.Contains(log, "retrying in "+tc.wantWait.Round(time.Second).String()) {
				t.Fatalf("log does not say the wait:\n%s", log)
			}
		})
	}
}

func TestStoppedAndInterruptedAttempts(t *testing.T) {
	t.Parallel()
	t.Run("Stopped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.runner.outcome = func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Stopped, Op: job.ActionCancel} }
		st := b.submit(t, "RETRY", nil)
		b.take(t, st, 0)
		evs := b.expect(t, st.ID, job.Started, job.CancelledByRequest)
		if evs[1].To != job.Stopped {
			t.Fatalf("%+v", evs[1])
		}
	})
	t.Run("InterruptedIsQueuedAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.runner.outcome = func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Interrupted} }
		st := b.submit(t, "RETRY", nil)
		b.take(t, st, 0)
		evs := b.expect(t, st.ID, job.Started, job.Requeued)
		if evs[1].To != job.Pending || evs[1].Revision <= st.Revision {
			t.Fatalf("requeue event %+v, want Pending in a new revision", evs[1])
		}
		c := b.pool.Get()
		defer c.Close()
		if n, _ := redis.Int(c.Do("LLEN", b.st.Keys().Jobs("RETRY"))); n != 2 {
			t.Fatalf("queue holds %d entries, want the submission's and the requeue's", n)
		}
	})
	t.Run("AfterShutdownAJobIsQueuedAgainWithoutRunning", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.submit(t, "RETRY", nil)
		b.ctl.Shutdown()
		b.take(t, st, 0)
		b.expect(t, st.ID, job.Requeued)
		if len(b.runner.attempts) != 0 {
			t.Fatal("a job ran after the shutdown")
		}
	})
}

func TestJobsThatCannotRunAreDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Twice on one host: the second delivery is dropped before it starts.
	st := b.submit(t, "RETRY", nil)
	release, _ := b.runner.Reserve(st.ID)
	b.take(t, st, 0)
	release()
	// Unknown to this host's plugins, and without stats.
	if err := b.ctl.Handle(queue.Job{Name: "NOPE", ID: job.NewID()}); err != nil {
		t.Fatal(err)
	}
	if err := b.ctl.Handle(queue.Job{Name: "RETRY", ID: job.NewID()}); err != nil {
		t.Fatal(err)
	}
	// Already ended.
	done := b.submit(t, "RETRY", nil)
	b.take(t, done, 0)
	b.expect(t, done.ID, job.Started, job.Succeeded)
	b.take(t, done, 0)
	b.noEvents(t)
	if len(b.runner.attempts) != 1 {
		t.Fatalf("%d attempts ran, want only the one of %s", len(b.runner.attempts), done.ID)
	}
	if got, _ := b.st.Get(ctx, st.ID); got.Status != job.Pending {
		t.Fatalf("the duplicate changed the job to %s", got.Status)
	}
}

func TestCheckin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	st := b.submit(t, "RETRY", nil)
	var rev int64
	b.runner.outcome = func(a runner.Attempt) runner.Outcome {
		rev = a.Revision
		if err := b.ctl.Checkin(ctx, a.ID, a.Revision, "half way"); err != nil {
			return runner.Outcome{Kind: runner.Failed, Err: err.Error()}
		}
		return runner.Outcome{Kind: runner.Succeeded}
	}
	b.take(t, st, 0)
	evs := b.expect(t, st.ID, job.Started, job.CheckedIn, job.Succeeded)
	if evs[1].CheckIn != "half way" {
		t.Fatalf("check-in event %+v", evs[1])
	}
	if err := b.ctl.Checkin(ctx, st.ID, rev, "too late"); err == nil || !strings.Contains(err.Error(), "no longer running") {
		t.Fatalf("a check-in after the end: %v", err)
	}
}

func TestSubmitRefusesWhatCannotRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  job.RequestJob
		want string
	}{
		{"UnknownName", job.RequestJob{Name: "NOPE", Metadata: &job.Metadata{Kind: job.Generic}}, `job name "NOPE" is unknown`},
		{"BadCron", job.RequestJob{Name: "RETRY", Metadata: &job.Metadata{Kind: job.Periodic, CronSpec: "* * * * *"}}, "cron_spec"},
		{"BadHook", job.RequestJob{Name: "RETRY", StatusHook: "ftp://x", Metadata: &job.Metadata{Kind: job.Generic}}, "status_hook"},
		{"PluginRefuses", job.RequestJob{Name: "RETRY", Parameters: job.Parameters{"v": "bad"}, Metadata: &job.Metadata{Kind: job.Generic}}, "bad is bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.ctl.Submit(ctx, &tc.req)
			var bad *job.BadRequestError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Submit = %v, want a bad request saying %q", err, tc.want)
			}
		})
	}
	b.noEvents(t)
}

func TestActions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	queued := b.submit(t, "RETRY", nil)
	if err := b.ctl.Action(ctx, queued.ID, job.ActionStop); err != nil {
		t.Fatal(err)
	}
	b.expect(t, queued.ID, job.StoppedByRequest)

	// A running job is signalled here at once (and over pub/sub).
	running := b.submit(t, "RETRY", nil)
	b.runner.outcome = func(a runner.Attempt) runner.Outcome {
		if err := b.ctl.Action(ctx, a.ID, job.ActionCancel); err != nil {
			return runner.Outcome{Kind: runner.Failed, Err: err.Error()}
		}
		return runner.Outcome{Kind: runner.Stopped, Op: job.ActionCancel}
	}
	b.take(t, running, 0)
	b.expect(t, running.ID, job.Started, job.CancelledByRequest)
	if !slices.Equal(b.runner.signals, []string{"cancel " + running.ID}) {
		t.Fatalf("signals %q", b.runner.signals)
	}

	// Retry of a job in Error, and of one that is not.
	b.runner.outcome = func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Failed, Err: "x"} }
	failed := b.submit(t, "ONCE", nil)
	b.take(t, failed, 0)
	b.expect(t, failed.ID, job.Started, job.Failed)
	if err := b.ctl.Action(ctx, failed.ID, job.ActionRetry); err != nil {
		t.Fatal(err)
	}
	b.expect(t, failed.ID, job.RetryRequested)
	var mismatch *job.StatusMismatchError
	if err := b.ctl.Action(ctx, queued.ID, job.ActionRetry); !errors.As(err, &mismatch) || mismatch.Status != job.Stopped {
		t.Fatalf("retry of a Stopped job: %v", err)
	}
	if err := b.ctl.Action(ctx, job.NewID(), job.ActionStop); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("stop of an unknown job: %v", err)
	}
	if err := b.ctl.Action(ctx, queued.ID, "pause"); !errors.Is(err, job.ErrUnknownAction) {
		t.Fatalf("an unknown action: %v", err)
	}
}

func TestFailStaleOnAFakeClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	stale := b.submit(t, "RETRY", nil)
	started, err := b.st.Start(ctx, stale.ID) // its host runs it, then goes silent
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(50 * time.Minute)
	fresh := b.submit(t, "RETRY", nil)
	if _, err := b.st.Start(ctx, fresh.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := b.ctl.FailStale(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("FailStale before the hour = %d, %v", n, err)
	}
	b.clock.Advance(11 * time.Minute)
	n, err := b.ctl.FailStale(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("FailStale = %d, %v; want 1", n, err)
	}
	evs := b.expect(t, stale.ID, job.Stale)
	if evs[0].From != job.Running || evs[0].To != job.Error || evs[0].Revision != started.Stats.Revision || !strings.Contains(evs[0].Detail, "no progress since") {
		t.Fatalf("stale event %+v", evs[0])
	}
	got, _ := b.st.Get(ctx, stale.ID)
	if got.Status != job.Error || got.DieAt != b.clock.Now().Unix() {
		t.Fatalf("stale job %+v", got)
	}
	if !slices.Equal(b.runner.signals, []string{"stop " + stale.ID}) {
		t.Fatalf("signals %q, want a stop of the stale job", b.runner.signals)
	}
	if got, _ := b.st.Get(ctx, fresh.ID); got.Status != job.Running {
		t.Fatalf("a fresh job became %s", got.Status)
	}
}

// A worker that took a job while Redis went away keeps trying to mark it
// Running until Redis is back, rather than giving up with the job's entry
// in its hands (it would stay Pending, in no queue, for good).
func TestAStartWaitsForRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	pool := srv.Pool(t)
	clk := fakeclock.New(time.Unix(1_700_000_000, 0))
	st := store.New(pool, store.Options{Namespace: srv.Namespace(t), Now: clk.Now})
	r := joblog.NewRedis(joblog.RedisOptions{Pool: pool, Key: st.Keys().JobLog, Level: joblog.Debug, TTL: time.Hour})
	run := &scripted{reserved: map[string]bool{}, outcome: func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Succeeded} }}
	ctl := jobs.New(jobs.Options{Store: st, Events: events.New(), Plugins: plugins{types}, Runner: run,
		Logs: joblog.NewManager([]joblog.Backend{r}, r, nil, time.Hour, nil), Clock: clk,
		Retry: backoff.Policy{Base: 10 * time.Second, Max: time.Minute}})
	t.Cleanup(ctl.Shutdown)
	sub, err := ctl.Submit(context.Background(), &job.RequestJob{Name: "ONCE", Parameters: job.Parameters{}, Metadata: &job.Metadata{Kind: job.Generic}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	done := make(chan error, 1)
	go func() { done <- ctl.Handle(queue.Job{Name: sub.Name, ID: sub.ID, EnqueuedAt: sub.EnqueueTime}) }()
	// It waits on its backoff timer rather than returning.
	if !clk.WaitTimers(1, 10*time.Second) {
		t.Fatal("Handle did not wait to try again")
	}
	select {
	case err := <-done:
		t.Fatalf("Handle returned while Redis was down: %v", err)
	default:
	}
	srv.Restart(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		clk.Advance(5 * time.Second)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Handle after Redis came back: %v", err)
			}
			got, err := st.Get(context.Background(), sub.ID)
			if err != nil || got.Status != job.Success {
				t.Fatalf("the job after Redis came back: %+v, %v", got, err)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Handle did not finish once Redis was back")
		}
	}
}
