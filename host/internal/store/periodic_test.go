package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

func TestPoliciesListsActivePoliciesWithTheirLastFire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	young := b.newPolicy(t, nil)
	*b.now -= 10
	old := b.newPolicy(t, nil)
	*b.now += 10
	fire(t, b.store, young, *b.now+60)
	fire(t, b.store, young, *b.now+120)

	ps, err := b.store.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for _, p := range ps {
		last[p.Stats.ID] = p.LastFire
	}
	if want := map[string]int64{young.ID: *b.now + 120, old.ID: 0}; !reflect.DeepEqual(last, want) {
		t.Fatalf("Policies' last fires = %v, want %v", last, want)
	}
	for _, p := range ps {
		if p.Stats.ID == old.ID && !reflect.DeepEqual(p.Stats, old) {
			t.Fatalf("Policies gave %+v\nwant %+v", p.Stats, old)
		}
	}

	list, err := b.store.ListPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(list), []string{old.ID, young.ID}; !slices.Equal(got, want) {
		t.Fatalf("ListPolicies = %q, want oldest first %q", got, want)
	}
}

func TestPoliciesDropsAPolicyWhoseStatsAreGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	gone := b.newPolicy(t, nil)
	kept := b.newPolicy(t, nil)
	_, _ = b.do(t, "DEL", b.keys.Stats(gone.ID))

	list, err := b.store.ListPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(list); !slices.Equal(got, []string{kept.ID}) {
		t.Fatalf("ListPolicies = %q, want only %s", got, kept.ID)
	}
	members, _ := redis.Strings(b.do(t, "SMEMBERS", b.keys.Policies()))
	if !slices.Equal(members, []string{kept.ID}) {
		t.Fatalf("policies set = %q after listing, want the gone policy dropped", members)
	}
}

func TestCreateExecution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CreatesStatsEntryAndMembership", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.newPolicy(t, nil)
		at := *b.now + 300
		timer := b.subscribe(t, b.keys.Timer())
		id := fire(t, b.store, p, at)
		if id != p.ID+"@"+fmt.Sprint(at) {
			t.Fatalf("execution ID = %q", id)
		}

		got, err := b.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := &job.Stats{ID: id, Status: job.Scheduled, Name: "DEMO", Kind: job.KindScheduled,
			RefLink: "/api/v1/jobs/" + id, CronSpec: p.CronSpec, EnqueueTime: *b.now, UpdateTime: *b.now,
			RunAt: at, WebHookURL: p.WebHookURL, UpstreamJobID: p.ID, Parameters: p.Parameters, Revision: *b.now}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("execution stats = %+v\nwant %+v", got, want)
		}

		members, _ := redis.Values(b.do(t, "ZRANGE", b.keys.Scheduled(), 0, -1, "WITHSCORES"))
		var entries []struct {
			Entry string
			Score int64
		}
		if err := redis.ScanSlice(members, &entries); err != nil {
			t.Fatal(err)
		}
		// Harbor's form: the policy's ID, the fire time in the mark.
		wantEntry := fmt.Sprintf(`{"name":"DEMO","id":"%s","t":%d,"args":{"_job_kind_periodic_":"%d","image":"demo","n":2.5}}`, p.ID, *b.now, at)
		if len(entries) != 1 || entries[0].Entry != wantEntry || entries[0].Score != at {
			t.Fatalf("scheduled set = %+v, want [%s] at %d", entries, wantEntry, at)
		}
		if score, err := redis.Int64(b.do(t, "ZSCORE", b.keys.Executions(p.ID), id)); err != nil || score != at {
			t.Fatalf("score in the policy's executions = %d, %v; want %d", score, err, at)
		}
		if known, _ := redis.Strings(b.do(t, "SMEMBERS", b.keys.KnownJobs())); !slices.Equal(known, []string{"DEMO"}) {
			t.Fatalf("known_jobs = %q", known)
		}
		if msgs := b.published(t, timer, b.keys.Timer()); !slices.Equal(msgs, []string{fmt.Sprint(at)}) {
			t.Fatalf("timer messages = %q, want the run time %d", msgs, at)
		}
	})

	for _, tc := range []struct {
		name string
		// prepare runs after the execution at now+300 was created and
		// returns the fire time to try.
		prepare func(t *testing.T, b *bundle, p *job.Stats) int64
		want    ExecutionOutcome
	}{
		{"SameFireTimeAgainIsDone", func(_ *testing.T, b *bundle, _ *job.Stats) int64 { return *b.now + 300 }, ExecutionDone},
		{"EarlierFireTimeIsDone", func(_ *testing.T, b *bundle, _ *job.Stats) int64 { return *b.now + 200 }, ExecutionDone},
		{"StoppedPolicyIsInactive", func(t *testing.T, b *bundle, p *job.Stats) int64 {
			if ok, _, err := b.store.StopPolicy(ctx, p.ID, job.ActionStop); err != nil || !ok {
				t.Fatalf("StopPolicy = %v, %v", ok, err)
			}
			return *b.now + 600
		}, PolicyInactive},
		{"MissingPolicyIsInactive", func(t *testing.T, b *bundle, p *job.Stats) int64 {
			_, _ = b.do(t, "DEL", b.keys.Stats(p.ID))
			return *b.now + 600
		}, PolicyInactive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.newPolicy(t, nil)
			first := fire(t, b.store, p, *b.now+300)
			at := tc.prepare(t, b, p)
			out, _, err := b.store.CreateExecution(ctx, p, at)
			if err != nil || out != tc.want {
				t.Fatalf("CreateExecution(%d) = %v, %v; want %v", at, out, err, tc.want)
			}
			if b.exists(t, b.keys.Stats(job.ExecutionID(p.ID, at))) && at != *b.now+300 {
				t.Fatalf("stats of %s were created", job.ExecutionID(p.ID, at))
			}
			got, _ := redis.Strings(b.do(t, "ZRANGE", b.keys.Executions(p.ID), 0, -1))
			if !slices.Equal(got, []string{first}) {
				t.Fatalf("executions = %q, want only %s", got, first)
			}
			if n, _ := redis.Int(b.do(t, "ZCARD", b.keys.Scheduled())); n > 1 {
				t.Fatalf("scheduled set has %d entries, want at most the first execution's", n)
			}
		})
	}

	t.Run("ExactlyOnceAcrossHosts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.newPolicy(t, nil)
		const hosts, fires = 8, 20
		var (
			created, done atomic.Int64
			wg            sync.WaitGroup
			start         = make(chan struct{})
			errs          = make(chan error, hosts*fires)
		)
		for range hosts {
			s := b.host(t, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Every host tries every fire time, in time order, as its
				// scheduler would.
				for i := range fires {
					out, _, err := s.CreateExecution(ctx, p, *b.now+int64(60*(i+1)))
					switch {
					case err != nil:
						errs <- err
					case out == ExecutionCreated:
						created.Add(1)
					case out == ExecutionDone:
						done.Add(1)
					default:
						errs <- fmt.Errorf("fire %d: outcome %v", i, out)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if created.Load() != fires || done.Load() != hosts*fires-fires {
			t.Fatalf("created %d, done %d; want %d created and %d done", created.Load(), done.Load(), fires, hosts*fires-fires)
		}
		for _, key := range []string{b.keys.Executions(p.ID), b.keys.Scheduled()} {
			if n, _ := redis.Int(b.do(t, "ZCARD", key)); n != fires {
				t.Fatalf("ZCARD %s = %d, want %d", key, n, fires)
			}
		}
		for i := range fires {
			if id := job.ExecutionID(p.ID, *b.now+int64(60*(i+1))); !b.exists(t, b.keys.Stats(id)) {
				t.Fatalf("no stats for %s", id)
			}
		}
	})
}

// TestExecutionsCap checks that a policy keeps its Options.MaxExecutions
// newest ended executions, dropping older ended ones, and never one still
// to run.
func TestExecutionsCap(t *testing.T) {
	t.Parallel()
	const limit = 3
	for _, tc := range []struct {
		name string
		// states of the executions before one more fires, oldest first.
		states []string
	}{
		{"OldestSuccessGoes", []string{inSuccess, inSuccess, inSuccess, inSuccess}},
		{"OldestStoppedGoes", []string{inStopped, inSuccess, inSuccess, inSuccess}},
		{"OldestFinalErrorGoes", []string{inFinalError, inSuccess, inStopped, inSuccess, inScheduled}},
		{"OlderEndedOnesGo", []string{inSuccess, inStopped, inFinalError, inSuccess, inSuccess, inScheduled}},
		{"EndedWithinTheCapStay", []string{inSuccess, inStopped, inFinalError, inScheduled, inScheduled}},
		{"ScheduledStaysBeyondTheCap", []string{inScheduled, inScheduled, inScheduled}},
		{"PendingStaysBeyondTheCap", []string{inPending, inScheduled, inScheduled}},
		{"RunningStaysBeyondTheCap", []string{inRunning, inScheduled, inScheduled}},
		{"ErrorWaitingForRetryStaysBeyondTheCap", []string{inErrorRetry, inScheduled, inScheduled}},
		{"NoneEndedAllStay", []string{inRunning, inPending, inErrorRetry, inScheduled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			s := b.host(t, func(o *Options) { o.MaxExecutions = limit })
			p := b.newPolicy(t, nil)
			var execs []string
			// Every execution is Scheduled when it is created, so none is
			// dropped before all of them get their state.
			for i := range tc.states {
				execs = append(execs, fire(t, s, p, *b.now+int64(60*(i+1))))
			}
			for i, state := range tc.states {
				putIn(t, s, execs[i], state)
			}
			last := fire(t, s, p, *b.now+int64(60*(len(tc.states)+1)))

			// The newest `limit` ended ones stay; older ended ones go.
			endedCount := 0
			for _, st := range tc.states {
				if ended(st) {
					endedCount++
				}
			}
			drop := endedCount - limit
			var wantKept, wantGone []string
			for i, id := range execs {
				if drop > 0 && ended(tc.states[i]) {
					wantGone = append(wantGone, id)
					drop--
				} else {
					wantKept = append(wantKept, id)
				}
			}
			wantKept = append(wantKept, last)
			got, _ := redis.Strings(b.do(t, "ZRANGE", b.keys.Executions(p.ID), 0, -1))
			if !slices.Equal(got, wantKept) {
				t.Fatalf("executions = %q, want %q", got, wantKept)
			}
			for _, id := range wantGone {
				if b.exists(t, b.keys.Stats(id)) {
					t.Errorf("stats of dropped execution %s are still there", id)
				}
			}
			for _, id := range wantKept {
				if !b.exists(t, b.keys.Stats(id)) {
					t.Errorf("stats of kept execution %s are gone", id)
				}
			}
			if ttl := b.ttl(t, b.keys.Executions(p.ID)); ttl <= 0 || ttl > 3*3600 {
				t.Fatalf("executions set TTL = %d, want the Error TTL (%d)", ttl, 3*3600)
			}
		})
	}
}

// TestExecutionsCapLooksPastNotEndedOnes: ended executions count toward the
// cap wherever they sit among ones still to run.
func TestExecutionsCapLooksPastNotEndedOnes(t *testing.T) {
	t.Parallel()
	const limit = 3
	b := setup(t)
	s := b.host(t, func(o *Options) { o.MaxExecutions = limit })
	p := b.newPolicy(t, nil)
	states := []string{inSuccess, inRunning, inSuccess, inScheduled, inSuccess, inSuccess}
	var execs []string
	for i := range states {
		execs = append(execs, fire(t, s, p, *b.now+int64(60*(i+1))))
	}
	for i, state := range states {
		putIn(t, s, execs[i], state)
	}
	last := fire(t, s, p, *b.now+int64(60*(len(states)+1)))
	// Four ended, cap 3: the oldest Success goes; Running and Scheduled
	// stay wherever they are.
	got, _ := redis.Strings(b.do(t, "ZRANGE", b.keys.Executions(p.ID), 0, -1))
	if want := append(append([]string{}, execs[1:]...), last); !slices.Equal(got, want) {
		t.Fatalf("executions = %q, want %q", got, want)
	}
}

func TestSubJobsAreExecutionsOfTheirParent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	parent := b.newJob(t, nil)
	loner := b.newJob(t, nil)
	if has, err := b.store.HasExecutions(ctx, parent.ID); err != nil || has {
		t.Fatalf("HasExecutions before any sub-job = %v, %v; want false", has, err)
	}
	child := b.newJob(t, func(s *job.Stats) { s.UpstreamJobID = parent.ID })
	for _, tc := range []struct {
		id   string
		want bool
	}{{parent.ID, true}, {loner.ID, false}, {child.ID, false}, {job.NewID(), false}} {
		if has, err := b.store.HasExecutions(ctx, tc.id); err != nil || has != tc.want {
			t.Fatalf("HasExecutions(%s) = %v, %v; want %v", tc.id, has, err, tc.want)
		}
	}
	execs, err := b.store.Executions(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(execs) != 1 || !reflect.DeepEqual(execs[0], child) {
		t.Fatalf("Executions(parent) = %+v, want [%+v]", execs, child)
	}
	if ttl := b.ttl(t, b.keys.Executions(parent.ID)); ttl <= 0 || ttl > 3*3600 {
		t.Fatalf("executions set TTL = %d, want the Error TTL", ttl)
	}
}

func TestStopPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("UnschedulesAndStopsWhatHasNotStarted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.newPolicy(t, nil)
		// Another policy of the same job created in the same second, with
		// an execution at the same fire time.
		other := b.newPolicy(t, nil)
		states := []string{inSuccess, inFinalError, inRunning, inPending, inScheduled, inScheduled}
		execs := make([]string, len(states))
		for i := range states {
			execs[i] = fire(t, b.store, p, *b.now+int64(60*(i+1)))
		}
		for i, state := range states {
			putIn(t, b.store, execs[i], state)
		}
		otherExec := fire(t, b.store, other, *b.now+60*6)
		before := map[string]*job.Stats{}
		for _, id := range execs {
			before[id], _ = b.store.Get(ctx, id)
		}
		*b.now += 5

		ok, _, err := b.store.StopPolicy(ctx, p.ID, job.ActionStop)
		if err != nil || !ok {
			t.Fatalf("StopPolicy = %v, %v; want true", ok, err)
		}
		got, err := b.store.Get(ctx, p.ID)
		if err != nil || got.Status != job.Stopped {
			t.Fatalf("policy after StopPolicy = %+v, %v; want Stopped", got, err)
		}
		if ttl := b.ttl(t, b.keys.Stats(p.ID)); ttl != 7200 {
			t.Fatalf("stopped policy TTL = %d, want 7200", ttl)
		}
		members, _ := redis.Strings(b.do(t, "SMEMBERS", b.keys.Policies()))
		if !slices.Equal(members, []string{other.ID}) {
			t.Fatalf("policies set = %q, want only the other policy %s", members, other.ID)
		}
		for i, id := range execs {
			ex, err := b.store.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			switch states[i] {
			case inScheduled, inPending:
				if ex.Status != job.Stopped || ex.UpdateTime != *b.now {
					t.Errorf("%s execution %s is %s (updated %d), want Stopped now", states[i], id, ex.Status, ex.UpdateTime)
				}
				if ttl := b.ttl(t, b.keys.Stats(id)); ttl != 7200 {
					t.Errorf("stopped execution %s TTL = %d, want 7200", id, ttl)
				}
			default:
				if !reflect.DeepEqual(ex, before[id]) {
					t.Errorf("%s execution changed:\n%+v\nwas %+v", states[i], ex, before[id])
				}
			}
		}
		entries, _ := redis.Strings(b.do(t, "ZRANGE", b.keys.Scheduled(), 0, -1))
		if len(entries) != 1 || entryID(t, entries[0]) != otherExec {
			t.Fatalf("scheduled set = %q, want only the other policy's %s", entries, otherExec)
		}
		if ps, _ := b.store.Policies(ctx); len(ps) != 1 || ps[0].Stats.ID != other.ID {
			t.Fatalf("Policies = %+v, want only the other policy", ps)
		}
		if o, _ := b.store.Get(ctx, other.ID); o.Status != job.Scheduled {
			t.Fatalf("the other policy is %s", o.Status)
		}
		if o, _ := b.store.Get(ctx, otherExec); o.Status != job.Scheduled {
			t.Fatalf("the other policy's execution is %s", o.Status)
		}
		if out, _, err := b.store.CreateExecution(ctx, p, *b.now+3600); err != nil || out != PolicyInactive {
			t.Fatalf("CreateExecution after stop = %v, %v; want PolicyInactive", out, err)
		}
		if out, _, err := b.store.CreateExecution(ctx, other, *b.now+3600); err != nil || out != ExecutionCreated {
			t.Fatalf("CreateExecution of the other policy = %v, %v; want ExecutionCreated", out, err)
		}
	})

	t.Run("SecondStopReportsFalse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.newPolicy(t, nil)
		if ok, _, err := b.store.StopPolicy(ctx, p.ID, job.ActionStop); err != nil || !ok {
			t.Fatalf("first StopPolicy = %v, %v", ok, err)
		}
		if ok, _, err := b.store.StopPolicy(ctx, p.ID, job.ActionCancel); err != nil || ok {
			t.Fatalf("second StopPolicy = %v, %v; want false", ok, err)
		}
		got, _ := b.store.Get(ctx, p.ID)
		if got.Status != job.Stopped {
			t.Fatalf("status = %s", got.Status)
		}
	})

	t.Run("MissingIsNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if ok, _, err := b.store.StopPolicy(ctx, job.NewID(), job.ActionStop); !errors.Is(err, job.ErrNotFound) || ok {
			t.Fatalf("StopPolicy of a missing policy = %v, %v; want ErrNotFound", ok, err)
		}
	})
}
