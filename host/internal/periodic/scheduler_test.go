package periodic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/clock"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/jobs"
	"github.com/berth-dev/berth/host/internal/periodic"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/fakeclock"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// t0 is where the fake clock starts: a whole second, second 20 of its
// minute.
var t0 = time.Unix(1_700_000_000, 0).UTC()

// waitLimit bounds every wait for the scheduler's goroutine (real time).
const waitLimit = 10 * time.Second

// napClock is the fake clock; every wait the loop sets its timer to after
// a run is reported on naps, once the timer is set. A nap received means a
// pass is over and the loop sleeps (or is about to) until the clock moves.
type napClock struct {
	*fakeclock.Clock
	naps chan time.Duration
}

func (c *napClock) NewTimer(d time.Duration) clock.Timer {
	return &napTimer{Timer: c.Clock.NewTimer(d), naps: c.naps}
}

type napTimer struct {
	clock.Timer
	naps chan time.Duration
}

func (t *napTimer) Reset(d time.Duration) bool {
	active := t.Timer.Reset(d)
	select {
	case t.naps <- d:
	default: // a loop that spins: its test fails on the naps it got
	}
	return active
}

// syncBuffer is a log output that a test may read while a logger writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type bundle struct {
	clk  *fakeclock.Clock
	naps chan time.Duration
	ns   string
	st   *store.Store
	ctl  *jobs.Controller
	logs *syncBuffer
}

// setup returns one host (store and lifecycle owner) on a namespace of its
// own, on a fake clock at t0 that the store shares.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{clk: fakeclock.New(t0), naps: make(chan time.Duration, 100),
		ns: redistest.Shared(t).Namespace(t), logs: &syncBuffer{}}
	b.st, b.ctl = b.host(t)
	return b
}

// host returns the store and lifecycle owner of a host on the bundle's
// namespace and clock, with a pool of its own.
func (b *bundle) host(t *testing.T) (*store.Store, *jobs.Controller) {
	t.Helper()
	st := store.New(redistest.Shared(t).Pool(t), store.Options{Namespace: b.ns, Now: b.clk.Now})
	ctl := jobs.New(jobs.Options{Store: st, Runner: runner.New(runner.Options{}), Clock: b.clk})
	t.Cleanup(ctl.Shutdown)
	return st, ctl
}

// scheduler returns a scheduler with opts, by default of the bundle's
// host; its timers report on b.naps and it logs into b.logs.
func (b *bundle) scheduler(t *testing.T, opts periodic.Options) *periodic.Scheduler {
	t.Helper()
	if opts.Policies == nil {
		opts.Policies = b.st
	}
	if opts.Executions == nil {
		opts.Executions = b.ctl
	}
	opts.Clock = &napClock{Clock: b.clk, naps: b.naps}
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: b.logs, Level: hclog.Trace})
	s := periodic.New(opts)
	t.Cleanup(s.Stop)
	return s
}

// policy stores an active policy firing every second, created at the
// clock's time; mutate may change it first.
func (b *bundle) policy(t *testing.T, mutate func(*job.Stats)) *job.Stats {
	t.Helper()
	now := b.st.Now()
	p := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Periodic, Status: job.Scheduled,
		CronSpec: "* * * * * *", EnqueueTime: now, UpdateTime: now, Revision: now,
		Parameters: job.Parameters{"n": 1.5}}
	p.RefLink = job.RefLink(p.ID)
	if mutate != nil {
		mutate(p)
	}
	if _, err := b.st.CreatePolicy(context.Background(), p); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	return p
}

// nap waits for the end of the loop's next pass and returns the wait it
// then asked for.
func (b *bundle) nap(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-b.naps:
		return d
	case <-time.After(waitLimit):
		t.Fatal("no pass ended")
		return 0
	}
}

// noNap fails if a pass has ended since the last nap.
func (b *bundle) noNap(t *testing.T) {
	t.Helper()
	select {
	case d := <-b.naps:
		t.Fatalf("an unexpected pass ran (it asked to wait %s)", d)
	default:
	}
}

// asleep waits until the loop sleeps on its timer. It is exact only after
// a run the timer started (Start, or the timer firing): a kicked run keeps
// its timer waiting meanwhile.
func (b *bundle) asleep(t *testing.T) {
	t.Helper()
	if !b.clk.WaitTimers(1, waitLimit) {
		t.Fatal("the scheduler never went to sleep on its timer")
	}
}

// fires returns the fire times of p's executions, in seconds after t0,
// ascending, after checking that each is the Scheduled execution
// <p>@<t> of p, with exactly one entry in the scheduled set, at t, and
// that p has no other entry there.
func (b *bundle) fires(t *testing.T, p *job.Stats) []int64 {
	t.Helper()
	exs, err := b.st.Executions(context.Background(), p.ID)
	if err != nil {
		t.Fatalf("Executions: %v", err)
	}
	entries := b.scheduled(t, p.ID)
	var out []int64
	for _, ex := range exs {
		if ex.ID != job.ExecutionID(p.ID, ex.RunAt) || ex.UpstreamJobID != p.ID ||
			ex.Kind != job.KindScheduled || ex.Status != job.Scheduled {
			t.Fatalf("execution %s: run_at %d, upstream %q, kind %s, status %s; want %s, kind %s, status %s",
				ex.ID, ex.RunAt, ex.UpstreamJobID, ex.Kind, ex.Status, job.ExecutionID(p.ID, ex.RunAt), job.KindScheduled, job.Scheduled)
		}
		if got := entries[ex.ID]; !slices.Equal(got, []int64{ex.RunAt}) {
			t.Fatalf("execution %s has scheduled entries at %v, want one at %d", ex.ID, got, ex.RunAt)
		}
		delete(entries, ex.ID)
		out = append(out, ex.RunAt-t0.Unix())
	}
	if len(entries) != 0 {
		t.Fatalf("scheduled entries of %s without an execution: %v", p.ID, entries)
	}
	slices.Sort(out)
	return out
}

// scheduled returns the scores of the scheduled set's entries of the
// executions of policyID, by job ID.
func (b *bundle) scheduled(t *testing.T, policyID string) map[string][]int64 {
	t.Helper()
	c := b.st.Pool().Get()
	defer c.Close()
	v, err := redis.Strings(c.Do("ZRANGE", b.st.Keys().Scheduled(), 0, -1, "WITHSCORES"))
	if err != nil {
		t.Fatalf("ZRANGE scheduled: %v", err)
	}
	out := map[string][]int64{}
	for i := 0; i+1 < len(v); i += 2 {
		var e struct {
			ID   string         `json:"id"`
			Args map[string]any `json:"args"`
		}
		if err := json.Unmarshal([]byte(v[i]), &e); err != nil {
			t.Fatalf("scheduled entry %q: %v", v[i], err)
		}
		e.ID = store.JobIDOf(e.ID, e.Args)
		if strings.HasPrefix(e.ID, policyID+"@") {
			score, err := redis.Int64([]byte(v[i+1]), nil)
			if err != nil {
				t.Fatalf("score %q: %v", v[i+1], err)
			}
			out[e.ID] = append(out[e.ID], score)
		}
	}
	return out
}

// span is the seconds from to to, both included.
func span(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func wantFires(t *testing.T, b *bundle, p *job.Stats, want []int64) {
	t.Helper()
	if got := b.fires(t, p); !slices.Equal(got, want) {
		t.Fatalf("fire times (s after t0) = %v, want %v", got, want)
	}
}

func wantCreated(t *testing.T, s *periodic.Scheduler, want int) {
	t.Helper()
	if got := s.Pass(context.Background()); got != want {
		t.Fatalf("Pass created %d executions, want %d", got, want)
	}
}

func TestPassCreatesTheFireTimesAfterCreationWithinTheHorizon(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec string
		// created is when the policy was created, now when the pass runs,
		// in seconds after t0.
		created, now int64
		want         []int64
	}{
		{"AtCreation", "* * * * * *", 0, 0, span(0, 10)},
		// The seconds before the policy existed are within the misfire
		// window, yet not its fire times.
		{"NotBeforeCreation", "* * * * * *", 3, 3, span(3, 13)},
		{"MissedSinceCreation", "* * * * * *", 0, 5, span(0, 15)},
		{"CreatedBeforeTheMisfireWindow", "* * * * * *", -600, 0, span(-59, 10)},
		{"EveryFiveSeconds", "*/5 * * * * *", 1, 1, []int64{5, 10}},
		{"NoneWithinTheHorizon", "0 0 * * * *", 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second})
			b.clk.Set(t0.Add(time.Duration(tt.now) * time.Second))
			p := b.policy(t, func(p *job.Stats) { p.CronSpec, p.EnqueueTime = tt.spec, t0.Unix()+tt.created })
			wantCreated(t, s, len(tt.want))
			wantFires(t, b, p, tt.want)
		})
	}
}

func TestPassAgainCreatesOnlyNewFireTimes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second})
	p := b.policy(t, nil)
	wantCreated(t, s, 11)
	wantCreated(t, s, 0)
	wantFires(t, b, p, span(0, 10))
	b.clk.Advance(4 * time.Second)
	wantCreated(t, s, 4)
	wantCreated(t, s, 0)
	wantFires(t, b, p, span(0, 14))
}

func TestPassAfterAnOutageCreatesOnlyTheMisfireWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		misfire time.Duration
		// first is the oldest fire time still created (s after t0), ten
		// minutes later.
		first int64
	}{
		{"DefaultMinute", 0, 541},
		{"HalfAMinute", 30 * time.Second, 571},
		{"FiveMinutes", 5 * time.Minute, 301},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second, Misfire: tt.misfire})
			p := b.policy(t, nil)
			wantCreated(t, s, 11)
			// Every host was down for ten minutes.
			b.clk.Advance(10 * time.Minute)
			want := span(tt.first, 610)
			wantCreated(t, s, len(want))
			wantFires(t, b, p, append(span(0, 10), want...))
		})
	}
}

func TestPassCreatesAtMostMaxPerPass(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second, MaxPerPass: 4})
	p := b.policy(t, nil)
	for i, want := range []int{4, 4, 3, 0} {
		wantCreated(t, s, want)
		wantFires(t, b, p, span(0, min(int64(4*(i+1)), 11)-1))
	}
}

func TestPassCreatesNoneForAStoppedPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("StoppedBeforeItsFirstPass", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second})
		p, live := b.policy(t, nil), b.policy(t, nil)
		if ok, _, err := b.st.StopPolicy(ctx, p.ID, job.ActionStop); err != nil || !ok {
			t.Fatalf("StopPolicy = %v, %v", ok, err)
		}
		wantCreated(t, s, 11)
		wantFires(t, b, p, nil)
		wantFires(t, b, live, span(0, 10))
	})
	t.Run("StoppedAfterItsFirstPass", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second})
		p, live := b.policy(t, nil), b.policy(t, nil)
		wantCreated(t, s, 22)
		if ok, _, err := b.st.StopPolicy(ctx, p.ID, job.ActionStop); err != nil || !ok {
			t.Fatalf("StopPolicy = %v, %v", ok, err)
		}
		b.clk.Advance(5 * time.Second)
		wantCreated(t, s, 5)
		wantFires(t, b, live, span(0, 15))
		if got := b.scheduled(t, p.ID); len(got) != 0 {
			t.Fatalf("the stopped policy has scheduled entries %v", got)
		}
		exs, err := b.st.Executions(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			if ex.RunAt > t0.Unix()+10 {
				t.Fatalf("the stopped policy got execution %s", ex.ID)
			}
		}
	})
}

// first lists the policies of src with policy id first.
type first struct {
	src periodic.Policies
	id  string
}

func (f first) Policies(ctx context.Context) ([]store.Policy, error) {
	ps, err := f.src.Policies(ctx)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Stats.ID == f.id && ps[j].Stats.ID != f.id })
	return ps, err
}

func TestPassSkipsAndLogsABadCronSpec(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad, good1, good2 := b.policy(t, nil), b.policy(t, nil), b.policy(t, nil)
	c := b.st.Pool().Get()
	_, err := c.Do("HSET", b.st.Keys().Stats(bad.ID), "cron_spec", "61 * * * * *")
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second, Policies: first{src: b.st, id: bad.ID}})
	wantCreated(t, s, 22)
	wantFires(t, b, bad, nil)
	wantFires(t, b, good1, span(0, 10))
	wantFires(t, b, good2, span(0, 10))
	logs := b.logs.String()
	for _, want := range []string{"[ERROR]", "bad cron spec", bad.ID, "61 * * * * *"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the log does not say %q:\n%s", want, logs)
		}
	}
}

func TestTwoHostsCreateEachFireTimeOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st2, ctl2 := b.host(t)
	hosts := []*periodic.Scheduler{
		b.scheduler(t, periodic.Options{Horizon: 10 * time.Second}),
		b.scheduler(t, periodic.Options{Horizon: 10 * time.Second, Policies: st2, Executions: ctl2}),
	}
	p1, p2 := b.policy(t, nil), b.policy(t, nil)
	var (
		mu    sync.Mutex
		total int
	)
	const rounds = 5
	for r := range rounds {
		if r > 0 {
			b.clk.Advance(3 * time.Second)
		}
		var wg sync.WaitGroup
		for _, s := range hosts {
			wg.Go(func() {
				n := s.Pass(context.Background())
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	last := int64(3*(rounds-1) + 10)
	wantFires(t, b, p1, span(0, last))
	wantFires(t, b, p2, span(0, last))
	if want := 2 * int(last+1); total != want {
		t.Fatalf("the hosts created %d executions between them, want %d", total, want)
	}
}

func TestStartRunsAPassAtOnceThenEveryEvery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		horizon, every time.Duration
		// wantEvery is the wait between passes.
		wantEvery time.Duration
	}{
		{"Every", 10 * time.Second, 5 * time.Second, 5 * time.Second},
		{"DefaultEveryIsAThirdOfTheHorizon", 12 * time.Second, 0, 4 * time.Second},
		{"Defaults", 0, 0, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			horizon := int64(30) // the default
			if tt.horizon > 0 {
				horizon = int64(tt.horizon / time.Second)
			}
			every := int64(tt.wantEvery / time.Second)
			p := b.policy(t, nil)
			s := b.scheduler(t, periodic.Options{Horizon: tt.horizon, Every: tt.every})
			s.Start(context.Background())
			if d := b.nap(t); d != tt.wantEvery {
				t.Fatalf("after its first pass the scheduler waits %s, want %s", d, tt.wantEvery)
			}
			wantFires(t, b, p, span(0, horizon))
			for i := int64(1); i <= 3; i++ {
				b.asleep(t)
				b.clk.Advance(tt.wantEvery - time.Second)
				if n := b.clk.Timers(); n != 1 {
					t.Fatalf("pass %d: the timer fired a second early (%d timers wait)", i+1, n)
				}
				b.noNap(t)
				b.clk.Advance(time.Second)
				if d := b.nap(t); d != tt.wantEvery {
					t.Fatalf("after pass %d the scheduler waits %s, want %s", i+1, d, tt.wantEvery)
				}
				wantFires(t, b, p, span(0, i*every+horizon))
			}
		})
	}
}

func TestKickRunsAPassAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second, Every: time.Hour})
	s.Start(context.Background())
	if d := b.nap(t); d != time.Hour {
		t.Fatalf("the scheduler waits %s, want 1h", d)
	}
	b.asleep(t)
	b.clk.Advance(2 * time.Second)
	// A policy created now has no executions until the next pass; a kick
	// makes that pass now.
	p := b.policy(t, nil)
	wantFires(t, b, p, nil)
	s.Kick()
	if d := b.nap(t); d != time.Hour {
		t.Fatalf("after the kicked pass the scheduler waits %s, want 1h", d)
	}
	wantFires(t, b, p, span(2, 12))
}

func TestStopIsSafeTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.scheduler(t, periodic.Options{Horizon: 10 * time.Second, Every: 5 * time.Second})
	s.Stop() // before Start: nothing to do
	p := b.policy(t, nil)
	s.Start(context.Background())
	b.nap(t)
	b.asleep(t)
	s.Stop()
	s.Stop()
	if n := b.clk.Timers(); n != 0 {
		t.Fatalf("%d timers still wait after Stop", n)
	}
	// Started again, it passes at once.
	b.clk.Advance(time.Minute)
	s.Start(context.Background())
	b.nap(t)
	s.Stop()
	wantFires(t, b, p, span(0, 70))
}
