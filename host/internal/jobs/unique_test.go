package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
)

// A periodic policy submitted unique stays unique, and an execution taken
// while its predecessor runs is skipped: it never reaches the runner.
func TestUniquePolicySkipsAnExecutionWhosePredecessorRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	p, err := b.ctl.Submit(ctx, &job.RequestJob{Name: "ONCE", Parameters: job.Parameters{"gc": true},
		Metadata: &job.Metadata{Kind: job.Periodic, CronSpec: "0 * * * * *", Unique: true}})
	if err != nil {
		t.Fatal(err)
	}
	b.expect(t, p.ID, job.Submitted)
	if stored, _ := b.st.Get(ctx, p.ID); !stored.Unique {
		t.Fatalf("the policy was stored without unique: %+v", stored)
	}
	now := b.clock.Now().Unix()
	execs := make([]*job.Stats, 2)
	for i := range execs {
		at := now + 60*int64(i+1)
		if out, err := b.ctl.CreateExecution(ctx, p, at); err != nil || out != store.ExecutionCreated {
			t.Fatalf("CreateExecution = %v, %v", out, err)
		}
		execs[i] = &job.Stats{ID: job.ExecutionID(p.ID, at), Name: "ONCE"}
		b.expect(t, execs[i].ID, job.Fired)
	}
	var nested error
	b.runner.outcome = func(a runner.Attempt) runner.Outcome {
		if a.ID == execs[0].ID {
			// The next fire time comes while the first still runs.
			nested = b.ctl.Handle(queue.Job{Name: "ONCE", ID: execs[1].ID})
		}
		return runner.Outcome{Kind: runner.Succeeded}
	}
	b.take(t, execs[0], 0)
	if nested != nil {
		t.Fatal(nested)
	}
	b.expect(t, execs[0].ID, job.Started)
	b.expect(t, execs[1].ID, store.ReasonSkipped)
	b.expect(t, execs[0].ID, job.Succeeded)
	if len(b.runner.attempts) != 1 || b.runner.attempts[0].ID != execs[0].ID {
		t.Fatalf("the runner got %+v, want the first execution only", b.runner.attempts)
	}
	skipped, _ := b.st.Get(ctx, execs[1].ID)
	if skipped.Status != job.Stopped || !strings.Contains(skipped.CheckIn, execs[0].ID) {
		t.Fatalf("skipped execution %+v", skipped)
	}
}

// A failed unique job waits for its retry with an entry gocraft/work's
// worker leaves the claim alone for, and the retry action on a unique job
// in Error is a conflict while an identical job submitted meanwhile lives.
func TestUniqueRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	submit := func() (*job.Stats, error) {
		return b.ctl.Submit(ctx, &job.RequestJob{Name: "RETRY", Parameters: job.Parameters{"u": 1.0},
			Metadata: &job.Metadata{Kind: job.Generic, Unique: true}})
	}
	first, err := submit()
	if err != nil {
		t.Fatal(err)
	}
	b.runner.outcome = func(runner.Attempt) runner.Outcome { return runner.Outcome{Kind: runner.Failed, Err: "boom"} }
	b.take(t, first, 0)
	for entry := range b.retrySet(t) {
		if strings.Contains(entry, `"unique"`) {
			t.Fatalf("the retry entry is flagged unique: %s", entry)
		}
	}
	var conflict *job.ConflictError
	if _, err := submit(); !errors.As(err, &conflict) || conflict.ExistingID != first.ID {
		t.Fatalf("a duplicate during the retry wait: %v", err)
	}
	// Its retry comes due (the mover takes the entry out of the retry
	// set), fails for good (its last attempt), and another takes its place.
	c := b.pool.Get()
	_, err = c.Do("DEL", b.st.Keys().Retry())
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	b.take(t, first, 2)
	if st, _ := b.st.Get(ctx, first.ID); st.Status != job.Error || len(b.retrySet(t)) != 0 {
		t.Fatalf("after the last attempt: %+v, retry set %v", st, b.retrySet(t))
	}
	second, err := submit()
	if err != nil {
		t.Fatalf("a duplicate after the final Error: %v", err)
	}
	if err := b.ctl.Action(ctx, first.ID, job.ActionRetry); !errors.As(err, &conflict) || conflict.ExistingID != second.ID {
		t.Fatalf("retry while an identical job is Pending: %v, want a ConflictError naming %s", err, second.ID)
	}
	if err := b.ctl.Action(ctx, second.ID, job.ActionStop); err != nil {
		t.Fatal(err)
	}
	if err := b.ctl.Action(ctx, first.ID, job.ActionRetry); err != nil {
		t.Fatalf("retry once the other ended: %v", err)
	}
}
