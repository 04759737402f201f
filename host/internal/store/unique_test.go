package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// claimOf is the claim key of the bundle's default unique job (newJob's
// name and parameters).
func (b *bundle) claimOf(t *testing.T, st *job.Stats) string {
	t.Helper()
	k, err := b.keys.Unique(st.Name, st.Parameters)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// holder is the job ID the claim holds ("" when there is none).
func (b *bundle) holder(t *testing.T, claim string) string {
	t.Helper()
	v, err := redis.String(b.do(t, "GET", claim))
	if errors.Is(err, redis.ErrNil) {
		return ""
	}
	return v
}

// duplicate tries to create a copy of st under a new ID.
func (b *bundle) duplicate(t *testing.T, s *Store, st *job.Stats) (*job.Stats, error) {
	t.Helper()
	dup := *st
	dup.ID = job.NewID()
	dup.RefLink = job.RefLink(dup.ID)
	dup.Status, dup.Kind, dup.RunAt = job.Pending, job.Generic, 0
	_, err := s.Create(context.Background(), &dup)
	return &dup, err
}

func conflictWith(err error, id string) bool {
	var c *job.ConflictError
	return errors.As(err, &c) && c.ExistingID == id
}

// The claim of a unique job is held, with a bounded TTL, in every status
// that has not ended, so a duplicate is refused naming the job; it is gone
// with every final status, so a duplicate is accepted.
func TestUniqueClaimFollowsTheJobToItsFinalStatus(t *testing.T) {
	t.Parallel()
	for _, state := range []string{inScheduled, inPending, inRunning, inErrorRetry, inSuccess, inStopped, inFinalError} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st := b.newJob(t, func(s *job.Stats) {
				s.Unique = true
				if state == inScheduled {
					s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+600
				}
			})
			if state != inScheduled {
				putIn(t, b.store, st.ID, state)
			}
			claim := b.claimOf(t, st)
			if ended(state) && b.exists(t, claim) {
				t.Fatalf("the claim outlived the job's final status (%s)", state)
			}
			dup, err := b.duplicate(t, b.store, st)
			if ended(state) {
				if err != nil {
					t.Fatalf("a duplicate of a job in %s: %v, want it created", state, err)
				}
				if got := b.holder(t, claim); got != dup.ID {
					t.Fatalf("the claim holds %q, want the new job %s", got, dup.ID)
				}
				return
			}
			if !conflictWith(err, st.ID) {
				t.Fatalf("a duplicate of a job in %s: %v, want a ConflictError naming %s", state, err, st.ID)
			}
			if got := b.holder(t, claim); got != st.ID {
				t.Fatalf("the claim holds %q, want %s", got, st.ID)
			}
			ttl, max := b.ttl(t, claim), int(DefaultUniqueTTL/time.Second)
			if state == inScheduled {
				max += 600 // until the run time, and then as long
			}
			if ttl <= 0 || ttl > max || ttl < max-5 {
				t.Fatalf("the claim's TTL is %d, want about %d", ttl, max)
			}
		})
	}
}

// A retry keeps the claim: the wait, the retried run in its new revision
// and the final status are one job's life.
func TestUniqueClaimIsKeptThroughARetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.newJob(t, func(s *job.Stats) { s.Unique = true })
	claim := b.claimOf(t, st)
	putIn(t, b.store, st.ID, inErrorRetry)
	if _, err := b.duplicate(t, b.store, st); !conflictWith(err, st.ID) {
		t.Fatalf("a duplicate during the retry wait: %v", err)
	}
	r, err := b.store.Start(ctx, st.ID)
	if err != nil || r.Outcome != Moved || r.Stats.Revision <= st.Revision {
		t.Fatalf("the retried start = %+v, %v", r, err)
	}
	if got := b.holder(t, claim); got != st.ID {
		t.Fatalf("the retried run's claim holds %q", got)
	}
	if _, err := b.duplicate(t, b.store, st); !conflictWith(err, st.ID) {
		t.Fatalf("a duplicate during the retried run: %v", err)
	}
	if r, err := move(ctx, b.store, st.ID, r.Stats.Revision, job.Success, 0); err != nil || r.Outcome != Moved {
		t.Fatalf("Move to Success = %+v, %v", r, err)
	}
	if b.exists(t, claim) {
		t.Fatal("the claim outlived the Success")
	}
}

// Every sign of life renews the claim, and the claim of a job that shows
// none expires: a lost job does not hold its name and parameters forever.
func TestUniqueClaimIsRenewedAndExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	s := b.host(t, func(o *Options) { o.UniqueTTL = 100 * time.Second })
	st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending, Unique: true,
		EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now, Parameters: job.Parameters{"renew": true}}
	if _, err := s.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	claim := b.claimOf(t, st)
	if ttl := b.ttl(t, claim); ttl <= 95 || ttl > 100 {
		t.Fatalf("TTL after submission %d, want 100", ttl)
	}
	shorten := func() { b.do(t, "EXPIRE", claim, 7) }
	shorten()
	r, err := s.Start(ctx, st.ID)
	if err != nil || r.Outcome != Moved {
		t.Fatalf("Start = %+v, %v", r, err)
	}
	if ttl := b.ttl(t, claim); ttl <= 95 {
		t.Fatalf("TTL after the start %d, want it renewed to 100", ttl)
	}
	shorten()
	if _, err := s.Checkin(ctx, st.ID, r.Stats.Revision, "alive"); err != nil {
		t.Fatal(err)
	}
	if ttl := b.ttl(t, claim); ttl <= 95 {
		t.Fatalf("TTL after a check-in %d, want it renewed to 100", ttl)
	}
	// A snooze until later keeps the claim until then, and as long after.
	shorten()
	e, err := entryOf(st)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Move(ctx, Change{ID: st.ID, Next: true, To: job.Scheduled, Reason: job.Snoozed,
		Set: Fields{FieldRunAt: "1700000500"}, Schedule: e, RunAt: 1_700_000_500}); err != nil || r.Outcome != Moved {
		t.Fatalf("snooze = %+v, %v", r, err)
	}
	if ttl := b.ttl(t, claim); ttl <= 595 || ttl > 600 {
		t.Fatalf("TTL of a snoozed job's claim %d, want 500 s to its run time + 100", ttl)
	}

	// A job lost with a claim of one second: the claim expires.
	quick := b.host(t, func(o *Options) { o.UniqueTTL = time.Second })
	lost := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending, Unique: true,
		EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now, Parameters: job.Parameters{"lost": true}}
	if _, err := quick.Create(ctx, lost); err != nil {
		t.Fatal(err)
	}
	lostClaim := b.claimOf(t, lost)
	deadline := time.Now().Add(5 * time.Second)
	for b.exists(t, lostClaim) {
		if time.Now().After(deadline) {
			t.Fatalf("the claim of a lost job still exists after 5s (TTL %d)", b.ttl(t, lostClaim))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := b.duplicate(t, quick, lost); err != nil {
		t.Fatalf("a duplicate once the lost job's claim expired: %v", err)
	}
}

// A claim whose holder has ended or has no stats (an expired job, or
// gocraft/work's EnqueueUnique, which writes "1") is taken over at once.
func TestUniqueClaimOfAJobThatIsGoneIsTakenOver(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{"NoStats": job.NewID(), "GocraftWork": "1"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			probe := &job.Stats{Name: "DEMO", Parameters: job.Parameters{"image": "demo", "n": 1.5}}
			claim := b.claimOf(t, probe)
			b.do(t, "SET", claim, value, "EX", 3600)
			st := b.newJob(t, func(s *job.Stats) { s.Unique = true })
			if got := b.holder(t, claim); got != st.ID {
				t.Fatalf("the claim holds %q, want the new job %s", got, st.ID)
			}
		})
	}
	t.Run("EndedWithoutReleasing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		old := b.newJob(t, func(s *job.Stats) { s.Parameters = job.Parameters{"image": "demo", "n": 1.5} })
		putIn(t, b.store, old.ID, inSuccess)
		claim := b.claimOf(t, old)
		b.do(t, "SET", claim, old.ID, "EX", 3600)
		st := b.newJob(t, func(s *job.Stats) { s.Unique = true })
		if got := b.holder(t, claim); got != st.ID {
			t.Fatalf("the claim holds %q, want the new job %s", got, st.ID)
		}
	})
}

// Hosts creating the same unique job at once create it once.
func TestUniqueCreateAcrossHostsCreatesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stores := []*Store{b.store, b.host(t, nil), b.host(t, nil)}
	const n = 30
	errs := make([]error, n)
	ids := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending, Unique: true,
				EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now, Parameters: job.Parameters{"race": 1.0}}
			ids[i] = st.ID
			<-start
			_, errs[i] = stores[i%len(stores)].Create(context.Background(), st)
		}(i)
	}
	close(start)
	wg.Wait()
	var winner string
	for i, err := range errs {
		if err == nil {
			if winner != "" {
				t.Fatalf("both %s and %s were created", winner, ids[i])
			}
			winner = ids[i]
		}
	}
	if winner == "" {
		t.Fatalf("none was created: %v", errs[0])
	}
	for _, err := range errs {
		if err != nil && !conflictWith(err, winner) {
			t.Fatalf("a refusal %v does not name %s", err, winner)
		}
	}
}

// The retry action takes the claim again, and is refused with a
// ConflictError while an identical job submitted meanwhile has not ended.
func TestUniqueRetryActionTakesTheClaimOrIsAConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	first := b.newJob(t, func(s *job.Stats) { s.Unique = true })
	claim := b.claimOf(t, first)
	putIn(t, b.store, first.ID, inFinalError)
	second, err := b.duplicate(t, b.store, first)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := b.store.Get(ctx, first.ID)
	if _, err := b.store.Retry(ctx, before); !conflictWith(err, second.ID) {
		t.Fatalf("Retry while an identical job is Pending: %v, want a ConflictError naming %s", err, second.ID)
	}
	if after, _ := b.store.Get(ctx, first.ID); after.Status != job.Error || after.Revision != before.Revision {
		t.Fatalf("a refused retry changed the job: %+v", after)
	}
	putIn(t, b.store, second.ID, inStopped)
	if r, err := b.store.Retry(ctx, before); err != nil || r.Outcome != Moved {
		t.Fatalf("Retry once the other ended = %+v, %v", r, err)
	}
	if got := b.holder(t, claim); got != first.ID {
		t.Fatalf("after the retry the claim holds %q, want %s", got, first.ID)
	}
	if _, err := b.duplicate(t, b.store, first); !conflictWith(err, first.ID) {
		t.Fatalf("a duplicate of the retried job: %v", err)
	}
}

// A stop ends a unique job's claim with the job: at once for a queued one,
// when its runner records Stopped for a running one.
func TestUniqueStopReleasesTheClaimWithTheStoppedStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.newJob(t, func(s *job.Stats) { s.Unique = true })
	claim := b.claimOf(t, st)
	r, err := b.store.Start(ctx, st.ID)
	if err != nil || r.Outcome != Moved {
		t.Fatalf("Start = %+v, %v", r, err)
	}
	if out, _, err := b.store.Stop(ctx, st, job.ActionStop); err != nil || out != StopSignalled {
		t.Fatalf("Stop = %v, %v", out, err)
	}
	if got := b.holder(t, claim); got != st.ID {
		t.Fatalf("a signalled job still runs; its claim holds %q", got)
	}
	if r, err := b.store.Move(ctx, Change{ID: st.ID, Revision: r.Stats.Revision, To: job.Stopped, Reason: job.StoppedByRequest}); err != nil || r.Outcome != Moved {
		t.Fatalf("Move to Stopped = %+v, %v", r, err)
	}
	if b.exists(t, claim) {
		t.Fatal("the claim outlived the Stopped status")
	}
}

// The executions of a unique policy take the claim as they start: one
// whose predecessor has not ended is skipped (Stopped, saying so), and so
// is one whose name and parameters a unique job holds.
func TestUniqueExecutionsOfAUniquePolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	p := b.newPolicy(t, func(s *job.Stats) { s.Unique = true })
	e1, e2, e3 := fire(t, b.store, p, *b.now+60), fire(t, b.store, p, *b.now+120), fire(t, b.store, p, *b.now+180)
	claim := b.claimOf(t, p)
	if b.exists(t, claim) {
		t.Fatal("an execution that has not started holds the claim")
	}
	ex, _ := b.store.Get(ctx, e1)
	if !ex.Unique {
		t.Fatalf("the execution of a unique policy is not unique: %+v", ex)
	}
	r1, err := b.store.Start(ctx, e1)
	if err != nil || r1.Outcome != Moved {
		t.Fatalf("Start %s = %+v, %v", e1, r1, err)
	}
	r2, err := b.store.Start(ctx, e2)
	if err != nil || r2.Outcome != Skipped || r2.Holder != e1 || r2.Stats.Status != job.Stopped {
		t.Fatalf("Start %s while %s runs = %+v, %v; want Skipped naming it", e2, e1, r2, err)
	}
	if len(r2.Events) != 1 || r2.Events[0].Reason != ReasonSkipped || r2.Events[0].To != job.Stopped {
		t.Fatalf("events of the skip: %+v", r2.Events)
	}
	skipped, _ := b.store.Get(ctx, e2)
	if skipped.Status != job.Stopped || !strings.Contains(skipped.CheckIn, "skipped") || !strings.Contains(skipped.CheckIn, e1) {
		t.Fatalf("the skipped execution's stats do not say why: %+v", skipped)
	}
	if got := b.holder(t, claim); got != e1 {
		t.Fatalf("the claim holds %q, want %s", got, e1)
	}
	// A unique Generic job with the same name and parameters is the same
	// job as the running execution.
	g := &job.Stats{ID: job.NewID(), Name: p.Name, Kind: job.Generic, Status: job.Pending, Unique: true,
		EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now, Parameters: p.Parameters}
	if _, err := b.store.Create(ctx, g); !conflictWith(err, e1) {
		t.Fatalf("a unique job like the running execution: %v", err)
	}
	if r, err := move(ctx, b.store, e1, r1.Stats.Revision, job.Success, 0); err != nil || r.Outcome != Moved {
		t.Fatalf("Move %s to Success = %+v, %v", e1, r, err)
	}
	if b.exists(t, claim) {
		t.Fatal("the claim outlived the execution")
	}
	// Now the Generic one takes it, and the next execution is skipped
	// because of it.
	if _, err := b.store.Create(ctx, g); err != nil {
		t.Fatal(err)
	}
	r3, err := b.store.Start(ctx, e3)
	if err != nil || r3.Outcome != Skipped || r3.Holder != g.ID {
		t.Fatalf("Start %s while %s is Pending = %+v, %v", e3, g.ID, r3, err)
	}
	if got := b.holder(t, claim); got != g.ID {
		t.Fatalf("a skip changed the claim: %q", got)
	}
}

// A policy that is not unique keeps its executions free of any claim.
func TestUniqueExecutionsOfAPolicyThatIsNotUniqueRunTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	p := b.newPolicy(t, nil)
	e1, e2 := fire(t, b.store, p, *b.now+60), fire(t, b.store, p, *b.now+120)
	for _, id := range []string{e1, e2} {
		if r, err := b.store.Start(ctx, id); err != nil || r.Outcome != Moved {
			t.Fatalf("Start %s = %+v, %v", id, r, err)
		}
	}
	if b.exists(t, b.claimOf(t, p)) {
		t.Fatal("executions of a policy that is not unique took a claim")
	}
}
