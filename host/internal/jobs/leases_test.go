package jobs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/runner"
)

// revocation is the first revocation of a held run: closed once, with
// why.
type revocation struct {
	once sync.Once
	ch   chan struct{}
	why  string
}

// holdUntilRevoked makes the bundle's runs last until they are revoked.
// Both the held run and the test wait on the same closed channel, so
// neither can take the news from the other.
func (b *bundle) holdUntilRevoked() *revocation {
	r := &revocation{ch: make(chan struct{})}
	b.runner.mu.Lock()
	defer b.runner.mu.Unlock()
	b.runner.onRevoke = func(_, w string) {
		r.once.Do(func() { r.why = w; close(r.ch) })
	}
	b.runner.outcome = func(runner.Attempt) runner.Outcome {
		<-r.ch
		return runner.Outcome{Kind: runner.LeaseLost, Lost: r.why}
	}
	return r
}

// runInBackground has the controller handle a job in a goroutine and
// waits until its lease is kept (the keeper's timer is armed).
func (b *bundle) runInBackground(t *testing.T, st *job.Stats) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	timers := b.clock.Timers()
	go func() { done <- b.ctl.Handle(queue.Job{Name: st.Name, ID: st.ID, EnqueuedAt: st.EnqueueTime}) }()
	if !b.clock.WaitTimers(timers+1, 10*time.Second) {
		t.Fatal("the lease keeper armed no timer")
	}
	return done
}

func waitRevoked(t *testing.T, r *revocation, done <-chan error) string {
	t.Helper()
	select {
	case <-r.ch:
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return r.why
	case <-time.After(10 * time.Second):
		t.Fatal("the run was not given up")
	}
	return ""
}

// A host whose clock shows it could not renew a run's lease for most of
// the lease (it was paused, or Redis did not answer) gives the run up, and
// does not record its end.
func TestARunWhoseLeaseWasNotRenewedInTimeIsGivenUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	why := b.holdUntilRevoked()
	st := b.submit(t, "ONCE", nil)
	done := b.runInBackground(t, st)
	b.clock.Advance(b.st.LeaseTTL()) // one late tick, a whole lease after the start
	w := waitRevoked(t, why, done)
	if !strings.Contains(w, "not renewed") {
		t.Fatalf("given up because %q", w)
	}
	cur, err := b.st.Get(context.Background(), st.ID)
	if err != nil || cur.Status != job.Running {
		t.Fatalf("after the run was given up: %+v, %v; want it Running until its lease is recovered", cur, err)
	}
	// The reaper's recovery queues it again once the lease expired.
	b.clock.Advance(time.Second)
	n, err := b.ctl.RecoverLeases(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("RecoverLeases = %d, %v", n, err)
	}
	if cur, _ := b.st.Get(context.Background(), st.ID); cur.Status != job.Pending || cur.Revision <= st.Revision {
		t.Fatalf("recovered job %+v", cur)
	}
}

// A host whose renewal finds the lease taken (another host recovered the
// job) gives its run up at once; renewals that succeed keep it.
func TestARunWhoseLeaseWasTakenIsGivenUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	why := b.holdUntilRevoked()
	st := b.submit(t, "ONCE", nil)
	done := b.runInBackground(t, st)
	every := b.st.LeaseTTL() / 3
	for i := 0; i < 5; i++ {
		timers := b.clock.Timers()
		b.clock.Advance(every)
		// The keeper renewed and armed its next tick; the run goes on.
		if !b.clock.WaitTimers(timers, 10*time.Second) {
			t.Fatal("the keeper stopped")
		}
		select {
		case <-why.ch:
			t.Fatalf("a run whose lease is renewed was given up: %s", why.why)
		default:
		}
	}
	// Another host takes the job over (its lease holder is another's).
	conn := b.pool.Get()
	_, err := conn.Do("HSET", b.st.Keys().LeaseHolders(), st.ID, "another-host")
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(every)
	if w := waitRevoked(t, why, done); !strings.Contains(w, "lost") {
		t.Fatalf("given up because %q", w)
	}
}

// RenewLeases renews at once rather than at the next tick: a run whose
// lease is lost (after a failover, the new primary lacks its start) is
// given up without waiting for the clock.
func TestRenewLeasesGivesUpALostRunAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	why := b.holdUntilRevoked()
	st := b.submit(t, "ONCE", nil)
	done := b.runInBackground(t, st)
	conn := b.pool.Get()
	_, err := conn.Do("HSET", b.st.Keys().LeaseHolders(), st.ID, "another-host")
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	b.ctl.RenewLeases() // the clock stands still
	if w := waitRevoked(t, why, done); !strings.Contains(w, "lost") {
		t.Fatalf("given up because %q", w)
	}
}

// After HoldStarts, a start waits until the hold is over.
func TestHoldStartsMakesStartsWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.ctl.HoldStarts(5 * time.Second)
	b.ctl.HoldStarts(time.Second) // shorter: no effect
	st := b.submit(t, "ONCE", nil)
	timers := b.clock.Timers()
	done := make(chan error, 1)
	go func() { done <- b.ctl.Handle(queue.Job{Name: st.Name, ID: st.ID, EnqueuedAt: st.EnqueueTime}) }()
	if !b.clock.WaitTimers(timers+1, 10*time.Second) {
		t.Fatal("the start armed no timer")
	}
	b.clock.Advance(4 * time.Second)
	if cur, _ := b.st.Get(context.Background(), st.ID); cur.Status != job.Pending {
		t.Fatalf("4 s into a 5 s hold the job is %s, want Pending", cur.Status)
	}
	b.clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cur, _ := b.st.Get(context.Background(), st.ID); cur.Status != job.Success {
		t.Fatalf("after the hold the job is %s, want Success", cur.Status)
	}
}
