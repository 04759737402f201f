package store

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
)

// want is an expected event: what changed and why.
type want struct {
	from, to job.Status
	reason   job.Reason
	newRev   bool
}

func checkEvents(t *testing.T, what string, got []job.Event, id string, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("%s: %d events %+v, want %d", what, len(got), got, len(wants))
	}
	for i, w := range wants {
		e := got[i]
		if e.JobID != id && id != "" || e.From != w.from || e.To != w.to || e.Reason != w.reason {
			t.Fatalf("%s: event %d is %s %s->%s (%s), want %s %s->%s (%s)", what, i, e.JobID, e.From, e.To, e.Reason, id, w.from, w.to, w.reason)
		}
		if (e.Revision > e.FromRevision) != w.newRev && w.from != "" {
			t.Fatalf("%s: event %d revision %d -> %d, want a new revision: %v", what, i, e.FromRevision, e.Revision, w.newRev)
		}
		if e.Name == "" || e.Kind == "" || e.Time.IsZero() {
			t.Fatalf("%s: event %d lacks name, kind or time: %+v", what, i, e)
		}
	}
}

// TestEveryChangeComesBackAsAnEvent walks a job through every kind of
// change the store makes and checks the events each one returns.
func TestEveryChangeComesBackAsAnEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending,
		EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now, WebHookURL: "http://core/hook"}
	evs, err := b.store.Create(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, "Create", evs, st.ID, want{"", job.Pending, job.Submitted, false})
	if evs[0].Revision != st.Revision || evs[0].Time != time.Unix(*b.now, 0) || evs[0].Announced {
		t.Fatalf("Create event %+v: want the job's revision, the store's time, no hook event", evs[0])
	}

	r, _ := b.store.Start(ctx, st.ID)
	checkEvents(t, "Start", r.Events, st.ID, want{job.Pending, job.Running, job.Started, false})
	if !r.Events[0].Announced {
		t.Fatal("Start of a job with a hook did not say it queued a hook event")
	}
	rev := r.Stats.Revision

	r, _ = b.store.Checkin(ctx, st.ID, rev, "half")
	checkEvents(t, "Checkin", r.Events, st.ID, want{job.Running, job.Running, job.CheckedIn, false})
	if r.Events[0].CheckIn != "half" {
		t.Fatalf("check-in event %+v", r.Events[0])
	}

	r, _ = move(ctx, b.store, st.ID, rev, job.Error, *b.now+30)
	checkEvents(t, "retry wait", r.Events, st.ID, want{job.Running, job.Error, job.RetryWait, false})
	if r.Events[0].RetryAt != *b.now+30 {
		t.Fatalf("retry wait event %+v: RetryAt", r.Events[0])
	}
	*b.now += 30
	r, _ = b.store.Start(ctx, st.ID)
	checkEvents(t, "Start of a retry", r.Events, st.ID, want{job.Error, job.Running, job.Retried, true})
	r, _ = b.store.Start(ctx, st.ID) // its host died: another worker took it
	checkEvents(t, "Start after a dead host", r.Events, st.ID, want{job.Running, job.Running, job.Recovered, true})
	r, _ = b.store.Requeue(ctx, st)
	checkEvents(t, "Requeue", r.Events, st.ID, want{job.Running, job.Pending, job.Requeued, true})
	r, _ = b.store.Start(ctx, st.ID)
	r, _ = b.store.Move(ctx, Change{ID: st.ID, Revision: r.Stats.Revision, To: job.Error, Reason: job.Stale, Detail: "silent"})
	checkEvents(t, "stale", r.Events, st.ID, want{job.Running, job.Error, job.Stale, false})
	if r.Events[0].Detail != "silent" {
		t.Fatalf("the detail of the change did not reach its event: %+v", r.Events[0])
	}
	r, _ = b.store.Retry(ctx, st)
	checkEvents(t, "Retry", r.Events, st.ID, want{job.Error, job.Pending, job.RetryRequested, true})
	_, evs, _ = b.store.Stop(ctx, st, job.ActionCancel)
	checkEvents(t, "Stop", evs, st.ID, want{job.Pending, job.Stopped, job.CancelledByRequest, false})

	// A stop asked while its host died ends the job at its next start.
	run := b.newJob(t, nil)
	b.store.Start(ctx, run.ID)
	b.store.Stop(ctx, run, job.ActionStop)
	r, _ = b.store.Start(ctx, run.ID)
	checkEvents(t, "stopped on start", r.Events, run.ID, want{job.Running, job.Stopped, job.StoppedByRequest, false})

	// Periodic: the policy, an execution per fire time, and a stop of
	// both.
	p := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Periodic, Status: job.Scheduled, CronSpec: "0 * * * * *",
		EnqueueTime: *b.now, UpdateTime: *b.now, Revision: *b.now}
	evs, _ = b.store.CreatePolicy(ctx, p)
	checkEvents(t, "CreatePolicy", evs, p.ID, want{"", job.Scheduled, job.Submitted, false})
	out, evs, _ := b.store.CreateExecution(ctx, p, *b.now+60)
	ex := job.ExecutionID(p.ID, *b.now+60)
	checkEvents(t, "CreateExecution", evs, ex, want{"", job.Scheduled, job.Fired, false})
	if out != ExecutionCreated || evs[0].UpstreamJobID != p.ID || evs[0].Kind != job.KindScheduled {
		t.Fatalf("execution event %+v", evs[0])
	}
	if _, again, _ := b.store.CreateExecution(ctx, p, *b.now+60); len(again) != 0 {
		t.Fatalf("a fire time already done made events: %+v", again)
	}
	_, evs, _ = b.store.StopPolicy(ctx, p.ID, job.ActionStop)
	checkEvents(t, "StopPolicy", evs, "",
		want{job.Scheduled, job.Stopped, job.StoppedByRequest, false}, want{job.Scheduled, job.Stopped, job.StoppedByRequest, false})
	if evs[0].JobID != p.ID || evs[1].JobID != ex {
		t.Fatalf("StopPolicy events are of %s and %s, want the policy then its execution", evs[0].JobID, evs[1].JobID)
	}

	// A refused change makes no event.
	if r, _ := b.store.Move(ctx, Change{ID: st.ID, Revision: 1, To: job.Success, Reason: job.Succeeded}); r.Outcome != Refused || len(r.Events) != 0 {
		t.Fatalf("a refused Move = %+v", r)
	}
}
