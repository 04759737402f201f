package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// leaseOf reads a job's lease: its holder and expiry (unix ms); "" and 0
// when it has none.
func (b *bundle) leaseOf(t *testing.T, id string) (string, int64) {
	t.Helper()
	holder, err := b.store.LeaseHolder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := b.do(t, "ZSCORE", b.keys.Leases(), id)
	exp, _ := redis.Int64(e, nil)
	return holder, exp
}

// A start takes the run's lease for the store's holder; a second host's
// start of the same job is refused while the lease holds (the job runs
// elsewhere), and recovers the job in a new revision once it expired.
func TestStartTakesTheLeaseAndRespectsAnotherHostsLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := b.host(t, func(o *Options) { o.Holder, o.Lease = "host-a", 10*time.Second })
	other := b.host(t, func(o *Options) { o.Holder, o.Lease = "host-b", 10*time.Second })
	st := b.newJob(t, nil)
	res, err := a.Start(ctx, st.ID)
	if err != nil || res.Outcome != Moved {
		t.Fatalf("Start = %+v, %v", res, err)
	}
	if holder, exp := b.leaseOf(t, st.ID); holder != "host-a" || exp != (*b.now+10)*1000 {
		t.Fatalf("lease %q until %d, want host-a until %d", holder, exp, (*b.now+10)*1000)
	}
	// A second delivery (a dead pool's entry queued again) meets the lease.
	got, err := other.Start(ctx, st.ID)
	if err != nil || got.Outcome != Leased || got.Holder != "host-a" {
		t.Fatalf("Start on another host while leased = %+v, %v; want Leased by host-a", got, err)
	}
	if cur, _ := a.Get(ctx, st.ID); cur.Status != job.Running || cur.Revision != res.Stats.Revision {
		t.Fatalf("after the refused start: %+v", cur)
	}
	*b.now += 11
	again, err := other.Start(ctx, st.ID)
	if err != nil || again.Outcome != Moved || again.Stats.Revision <= res.Stats.Revision {
		t.Fatalf("Start after the lease expired = %+v, %v; want a new revision", again, err)
	}
	if holder, _ := b.leaseOf(t, st.ID); holder != "host-b" {
		t.Fatalf("lease held by %q after the recovery, want host-b", holder)
	}
	// The end of the run drops its lease with the Running status.
	if _, err := other.Move(ctx, Change{ID: st.ID, Revision: again.Stats.Revision, To: job.Success, Reason: job.Succeeded}); err != nil {
		t.Fatal(err)
	}
	if holder, exp := b.leaseOf(t, st.ID); holder != "" || exp != 0 {
		t.Fatalf("the lease of a job that ended is left: %q until %d", holder, exp)
	}
}

// Renewal extends the leases its holder holds for the revision it runs,
// even one that expired without being recovered, and reports the leases
// it lost.
func TestRenewLeasesReportsTheLostOnes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := b.host(t, func(o *Options) { o.Holder, o.Lease = "host-a", 10*time.Second })
	other := b.host(t, func(o *Options) { o.Holder, o.Lease = "host-b", 10*time.Second })
	kept, taken, ended := b.newJob(t, nil), b.newJob(t, nil), b.newJob(t, nil)
	var revs []int64
	for _, st := range []*job.Stats{kept, taken, ended} {
		res, err := a.Start(ctx, st.ID)
		if err != nil || res.Outcome != Moved {
			t.Fatalf("Start = %+v, %v", res, err)
		}
		revs = append(revs, res.Stats.Revision)
	}
	*b.now += 11 // every lease expired; none recovered yet
	if res, err := other.Start(ctx, taken.ID); err != nil || res.Outcome != Moved {
		t.Fatalf("recovery of an expired lease = %+v, %v", res, err)
	}
	if _, err := a.Move(ctx, Change{ID: ended.ID, Revision: revs[2], To: job.Success, Reason: job.Succeeded}); err != nil {
		t.Fatal(err)
	}
	lost, err := a.RenewLeases(ctx, []Lease{{kept.ID, revs[0]}, {taken.ID, revs[1]}, {ended.ID, revs[2]}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lost)
	want := []string{taken.ID, ended.ID}
	slices.Sort(want)
	if !slices.Equal(lost, want) {
		t.Fatalf("lost %q, want %q", lost, want)
	}
	if holder, exp := b.leaseOf(t, kept.ID); holder != "host-a" || exp != (*b.now+10)*1000 {
		t.Fatalf("kept lease %q until %d, want host-a until %d", holder, exp, (*b.now+10)*1000)
	}
	if holder, _ := b.leaseOf(t, taken.ID); holder != "host-b" {
		t.Fatalf("the renewal took back a lease another host holds: %q", holder)
	}
}

// The reaper's recovery queues again, in a new revision, a running job
// whose lease expired, and only then; a job asked to stop ends Stopped.
func TestRecoverLeaseQueuesAgainOnlyAnExpiredLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := b.host(t, func(o *Options) { o.Holder, o.Lease = "host-a", 10*time.Second })
	st, stop := b.newJob(t, nil), b.newJob(t, nil)
	// The jobs' own entries left with the worker that took them.
	b.do(t, "DEL", b.keys.Jobs("DEMO"))
	first, err := a.Start(ctx, st.ID)
	if err != nil || first.Outcome != Moved {
		t.Fatalf("Start = %+v, %v", first, err)
	}
	if _, err := a.Start(ctx, stop.ID); err != nil {
		t.Fatal(err)
	}
	if out, _, err := a.Stop(ctx, stop, job.ActionStop); err != nil || out != StopSignalled {
		t.Fatalf("Stop = %v, %v", out, err)
	}
	if ids, err := b.store.ExpiredLeases(ctx, 10); err != nil || len(ids) != 0 {
		t.Fatalf("expired leases before they expire: %q, %v", ids, err)
	}
	if res, err := b.store.RecoverLease(ctx, st.ID); err != nil || res.Outcome != Refused {
		t.Fatalf("RecoverLease of a lease that holds = %+v, %v; want Refused", res, err)
	}
	*b.now += 11
	ids, err := b.store.ExpiredLeases(ctx, 10)
	if err != nil || len(ids) != 2 {
		t.Fatalf("expired leases %q, %v; want both", ids, err)
	}
	res, err := b.store.RecoverLease(ctx, st.ID)
	if err != nil || res.Outcome != Moved || res.Stats.Revision <= first.Stats.Revision || len(res.Events) != 1 ||
		res.Events[0].From != job.Running || res.Events[0].To != job.Pending || res.Events[0].Reason != ReasonLeaseExpired {
		t.Fatalf("RecoverLease = %+v, %v", res, err)
	}
	if q := b.lrange(t, b.keys.Jobs("DEMO")); len(q) != 1 {
		t.Fatalf("queue %q, want the recovered job's entry", q)
	}
	if cur, _ := b.store.Get(ctx, st.ID); cur.Status != job.Pending || cur.Revision != res.Stats.Revision {
		t.Fatalf("recovered job %+v", cur)
	}
	if holder, exp := b.leaseOf(t, st.ID); holder != "" || exp != 0 {
		t.Fatalf("the recovered job keeps its lease: %q until %d", holder, exp)
	}
	res, err = b.store.RecoverLease(ctx, stop.ID)
	if err != nil || res.Outcome != StoppedOnStart {
		t.Fatalf("RecoverLease of a job asked to stop = %+v, %v", res, err)
	}
	if cur, _ := b.store.Get(ctx, stop.ID); cur.Status != job.Stopped {
		t.Fatalf("job asked to stop: %+v", cur)
	}
	// Nothing left: a second recovery finds no lease.
	if res, err := b.store.RecoverLease(ctx, st.ID); err != nil || res.Outcome != Missing {
		t.Fatalf("second RecoverLease = %+v, %v", res, err)
	}
	if ids, _ := b.store.ExpiredLeases(ctx, 10); len(ids) != 0 {
		t.Fatalf("expired leases left: %q", ids)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{fmt.Errorf("store: move job x: %w", redis.Error("LOADING Redis is loading the dataset in memory")), true},
		{redis.Error("READONLY You can't write against a read only replica."), true},
		{fmt.Errorf("store: move job x: %w", redis.Error("ERR user_script:1: Script attempted to access nonexistent global variable")), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
