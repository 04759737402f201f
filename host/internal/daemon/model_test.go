package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// startedMs reads the start time a CLOCK or SOLO job checked in.
func startedMs(t *testing.T, st *job.Stats) int64 {
	t.Helper()
	ms, err := strconv.ParseInt(strings.TrimPrefix(st.CheckIn, "started_ms="), 10, 64)
	if err != nil {
		t.Fatalf("check-in %q is not a start time", st.CheckIn)
	}
	return ms
}

func TestScheduledJobStartsWithinASecondOfRunAt(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for i := 0; i < 3; i++ {
		st := h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Scheduled", "schedule_delay": 2})
		if st.Status != job.Scheduled || st.RunAt != st.EnqueueTime+2 {
			t.Fatalf("submit answered %+v", st)
		}
		got := h.Wait(t, st.ID, wait, "a start", func(s *job.Stats) bool { return strings.HasPrefix(s.CheckIn, "started_ms=") })
		late := time.Duration(startedMs(t, got)-st.RunAt*1000) * time.Millisecond
		t.Logf("run %d started %v after run_at", i, late)
		if late < 0 || late > time.Second {
			t.Fatalf("started %v after run_at, want within [0, 1s]", late)
		}
	}
}

// TestPeriodicFiresEachTickOnceAcrossTwoHosts runs a policy firing every
// second on two hosts sharing one Redis and counts the executions.
func TestPeriodicFiresEachTickOnceAcrossTwoHosts(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := c.Start(t, nil)
	b := c.Start(t, nil)
	policy := a.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *"})
	if policy.Kind != job.Periodic || policy.Status != job.Scheduled || policy.CronSpec != "* * * * * *" || policy.NumericPolicyID == 0 || policy.Unique {
		t.Fatalf("submit answered %+v", policy)
	}
	// Poll the executions until 3 have run.
	var execs []map[string]*job.Stats
	var listedAt time.Time
	deadline := time.Now().Add(wait)
	for {
		r := b.Do(t, http.MethodGet, "/api/v1/jobs/"+policy.ID+"/executions?page_size=1000", hosttest.Auth, nil)
		listedAt = time.Now()
		if r.Status != http.StatusOK {
			t.Fatalf("executions: %d %s", r.Status, r.Body)
		}
		execs = nil
		r.JSON(t, &execs)
		ran := 0
		for _, e := range execs {
			if e["job"] != nil && e["job"].Status == job.Success {
				ran++
			}
		}
		if ran >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d executions ran within %s of a policy firing every second (executions: %d)", ran, wait, len(execs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[int64]string{}
	started := 0
	for _, e := range execs {
		ex := e["job"]
		fire, err := strconv.ParseInt(strings.TrimPrefix(ex.ID, policy.ID+"@"), 10, 64)
		if err != nil || ex.UpstreamJobID != policy.ID || ex.Kind != job.KindScheduled || ex.RunAt != fire || ex.CronSpec != policy.CronSpec {
			t.Fatalf("execution %+v", ex)
		}
		if prev, dup := seen[fire]; dup {
			t.Fatalf("fire time %d has two executions: %s and %s", fire, prev, ex.ID)
		}
		seen[fire] = ex.ID
		if ex.Status == job.Success {
			started++
			if late := startedMs(t, ex) - fire*1000; late < 0 || late > 1000 {
				t.Errorf("execution %s started %d ms after its fire time", ex.ID, late)
			}
		}
	}
	// At most one run per second since the policy was created (its first
	// fire time is its creation second); the horizon adds scheduled ones
	// ahead.
	elapsed := listedAt.Unix() - policy.EnqueueTime
	if started < 3 || started > 6 || int64(started) > elapsed+1 {
		t.Fatalf("%d executions ran in %ds of a policy firing every second (executions: %d)", started, elapsed, len(execs))
	}
	ids := make([]int64, 0, len(seen))
	for fire := range seen {
		ids = append(ids, fire)
	}
	for _, fire := range ids {
		if _, ok := seen[fire+1]; !ok && seen[fire+2] != "" {
			t.Errorf("fire time %d has no execution between %d and %d", fire+1, fire, fire+2)
		}
	}

	// Stopping the policy unschedules it and stops the executions that
	// have not started; only this policy goes.
	other := a.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "0 0 0 1 1 *"})
	if r := b.Action(t, policy.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	stoppedIn := time.Now().Unix()
	if got := a.Get(t, policy.ID); got.Status != job.Stopped {
		t.Fatalf("policy after stop: %s", got.Status)
	}
	var left []map[string]*job.Stats
	a.Do(t, http.MethodGet, "/api/v1/jobs/"+policy.ID+"/executions?non_dead_only=true", hosttest.Auth, nil).JSON(t, &left)
	for _, e := range left {
		if e["job"].Status != job.Running {
			t.Errorf("after the stop, execution %s is %s", e["job"].ID, e["job"].Status)
		}
	}
	var scheduled []map[string]*job.Stats
	a.Do(t, http.MethodGet, "/api/v1/jobs?kind=Scheduled", hosttest.Auth, nil).JSON(t, &scheduled)
	for _, e := range scheduled {
		if e["job"].UpstreamJobID == policy.ID {
			t.Errorf("execution %s of the stopped policy is still scheduled", e["job"].ID)
		}
	}
	var atStop []map[string]*job.Stats
	a.Do(t, http.MethodGet, "/api/v1/jobs/"+policy.ID+"/executions?page_size=1000", hosttest.Auth, nil).JSON(t, &atStop)
	n := len(atStop)
	// A pass of each host's scheduler after the stop creates nothing. A
	// pass creates the fire times up to a fixed horizon ahead, in whole
	// seconds: one finds a fire time that no pass before the stop found
	// once the clock is past the second of the stop.
	for time.Now().Unix() <= stoppedIn {
		time.Sleep(10 * time.Millisecond)
	}
	for _, h := range []*hosttest.Host{a, b} {
		if created := h.RunPeriodicPass(context.Background()); created != 0 {
			t.Fatalf("a periodic pass after the stop created %d executions", created)
		}
	}
	var after []map[string]*job.Stats
	a.Do(t, http.MethodGet, "/api/v1/jobs/"+policy.ID+"/executions?page_size=1000", hosttest.Auth, nil).JSON(t, &after)
	if len(after) > n {
		t.Fatalf("the stopped policy got %d new executions", len(after)-n)
	}
	if got := a.Get(t, other.ID); got.Status != job.Scheduled {
		t.Fatalf("the other policy is %s after the first was stopped", got.Status)
	}
	var policies []map[string]*job.Stats
	r := a.Do(t, http.MethodGet, "/api/v1/jobs?kind=Periodic", hosttest.Auth, nil)
	r.JSON(t, &policies)
	if len(policies) != 1 || policies[0]["job"].ID != other.ID || r.Header.Get("Total-Count") != "1" {
		t.Fatalf("active policies: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}
}

func TestBadCronSpecIsRefused(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for _, spec := range []string{"* * * * *", "61 * * * * *", "0 0 0 30 2 *", "every minute"} {
		r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": spec}))
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "cron_spec") {
			t.Errorf("cron spec %q: %d %s", spec, r.Status, r.Body)
		}
	}
}

func TestRetriesBackOffAndStopAtMaxFails(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, func(c *config.Config) {
		c.Retry.BackoffBase = config.Duration(time.Second)
		c.Retry.BackoffMax = config.Duration(time.Minute)
	})
	sub := h.Subscribe(t)
	// FLAKY allows 3 failed runs; it succeeds on its 3rd call.
	st := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 3}, nil)
	// Never succeeding, it ends in Error after MaxFails (3) runs: its
	// third failure is final (no retry follows). It runs meanwhile.
	bad := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
	done := h.WaitStatus(t, st.ID, job.Success, 30*time.Second)
	if done.CheckIn == "" || !strings.HasPrefix(done.CheckIn, "attempt 3 ") || done.Revision <= st.Revision {
		t.Fatalf("after the retries: %+v", done)
	}
	log := h.LogText(t, st.ID)
	var waits []time.Duration
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, "retrying in "); i >= 0 {
			d, err := time.ParseDuration(strings.Fields(line[i+len("retrying in "):])[0])
			if err != nil {
				t.Fatalf("log line %q", line)
			}
			waits = append(waits, d)
		}
	}
	if len(waits) != 2 || !(waits[0] >= time.Second && waits[1] >= 2*time.Second && waits[1] > waits[0]) {
		t.Fatalf("retry waits %v, want two growing ones from 1s:\n%s", waits, log)
	}

	h.Wait(t, bad.ID, 30*time.Second, "the third attempt", func(s *job.Stats) bool { return strings.HasPrefix(s.CheckIn, "attempt 3 ") && s.Status == job.Error })
	finalFailure(t, sub, bad.ID, 2)
	final := h.Get(t, bad.ID)
	if final.Status != job.Error || !strings.HasPrefix(final.CheckIn, "attempt 3 ") {
		t.Fatalf("after MaxFails: %+v", final)
	}
	if log := h.LogText(t, bad.ID); strings.Count(log, "failed: flaky attempt") != 3 || strings.Count(log, "retrying in") != 2 {
		t.Fatalf("log after MaxFails:\n%s", log)
	}

	// SPAWN declares ShouldRetry false; launching an unknown job fails it.
	once := h.Submit(t, "SPAWN", map[string]any{"name": "NOPE"}, nil)
	h.WaitStatus(t, once.ID, job.Error, wait)
	finalFailure(t, sub, once.ID, 0)
	if log := h.LogText(t, once.ID); strings.Count(log, "failed:") != 1 || strings.Contains(log, "retrying") {
		t.Fatalf("a job that declares ShouldRetry false was retried:\n%s", log)
	}
}

// finalFailure reads sub until the event of job id's final failure (the
// lifecycle decided that no retry follows) and checks that exactly
// retries failures before it were to be retried.
func finalFailure(t *testing.T, sub *events.Subscription, id string, retries int) job.Event {
	t.Helper()
	waits := 0
	ev := hosttest.WaitEvent(t, sub, wait, "the final failure of "+id, func(ev job.Event) bool {
		if ev.JobID == id && ev.Reason == job.RetryWait {
			if waits++; waits > retries {
				t.Fatalf("job %s: failure %d (revision %d) is retried at %d; want %d retries", id, waits, ev.Revision, ev.RetryAt, retries)
			}
		}
		return ev.JobID == id && ev.Reason == job.Failed
	})
	if ev.To != job.Error || waits != retries {
		t.Fatalf("job %s: final failure to %s after %d retries, want Error after %d", id, ev.To, waits, retries)
	}
	return ev
}

func TestRetryActionRerunsAnErrorJobUnderTheSameID(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "SPAWN", map[string]any{"name": "NOPE"}, nil) // fails once, ShouldRetry false
	failed := h.WaitStatus(t, st.ID, job.Error, wait)
	if r := h.Action(t, st.ID, "retry"); r.Status != http.StatusNoContent {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	again := h.Wait(t, st.ID, wait, "a second failed run", func(s *job.Stats) bool {
		return s.Status == job.Error && s.Revision > failed.Revision
	})
	if again.ID != st.ID {
		t.Fatalf("retry changed the ID: %s", again.ID)
	}
	if log := h.LogText(t, st.ID); strings.Count(log, "failed:") != 2 {
		t.Fatalf("log after a retry:\n%s", log)
	}
	ok := h.Submit(t, "NOOP", nil, nil)
	h.WaitStatus(t, ok.ID, job.Success, wait)
	r := h.Action(t, ok.ID, "retry")
	var body struct {
		Code    int    `json:"code"`
		Details string `json:"details"`
	}
	r.JSON(t, &body)
	if r.Status != http.StatusConflict || body.Code != 10016 || !strings.Contains(body.Details, "Success") {
		t.Fatalf("retry of a Success job: %d %s", r.Status, r.Body)
	}
}

func TestUniqueDuplicateIs409WithTheExistingID(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	meta := func() map[string]any {
		return map[string]any{"kind": "Scheduled", "schedule_delay": 60, "unique": true}
	}
	first := h.Submit(t, "DEMO", demo(nil), meta())
	r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("DEMO", demo(nil), meta()))
	var body struct {
		Code    int    `json:"code"`
		Details string `json:"details"`
	}
	r.JSON(t, &body)
	if r.Status != http.StatusConflict || body.Code != 10012 || !strings.Contains(body.Details, first.ID) {
		t.Fatalf("duplicate: %d %s, want 409 naming %s", r.Status, r.Body, first.ID)
	}
	// Other parameters, or not unique: accepted.
	h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 1}), meta())
	h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})
	// Once the first is stopped, the same job is accepted again.
	if r := h.Action(t, first.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d", r.Status)
	}
	h.Submit(t, "DEMO", demo(nil), meta())
}

func TestConcurrencyLimitHoldsAcrossHosts(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := c.Start(t, nil)
	b := c.Start(t, nil)
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, a.Submit(t, "SOLO", map[string]any{"hold_seconds": 0.5}, nil).ID)
	}
	// Meanwhile other job types are not held back.
	other := b.Submit(t, "NOOP", nil, nil)
	b.WaitStatus(t, other.ID, job.Success, wait)
	type span struct{ start, end int64 }
	var spans []span
	for _, id := range ids {
		st := a.WaitStatus(t, id, job.Success, 30*time.Second)
		spans = append(spans, span{startedMs(t, st), st.UpdateTime})
	}
	for i := range spans {
		for j := range spans {
			if i != j && spans[i].start < spans[j].start && spans[j].start < spans[i].start+500 {
				t.Fatalf("SOLO runs %d and %d overlap: started %d and %d ms", i, j, spans[i].start, spans[j].start)
			}
		}
	}
}

func TestPausedQueueHoldsItsJobsUntilResumed(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, nil)
	pool := c.Redis.Pool(t)
	conn := pool.Get()
	defer conn.Close()
	key := fmt.Sprintf("{%s}:jobs:NOOP:paused", c.Namespace)
	if _, err := conn.Do("SET", key, "1"); err != nil {
		t.Fatal(err)
	}
	st := h.Submit(t, "NOOP", nil, nil)
	lookedPast(t, h, "CLOCK", 8)
	if got := h.Get(t, st.ID); got.Status != job.Pending {
		t.Fatalf("a job of a paused queue is %s", got.Status)
	}
	if _, err := conn.Do("DEL", key); err != nil {
		t.Fatal(err)
	}
	h.WaitStatus(t, st.ID, job.Success, wait)
}

// lookedPast runs n jobs of name (a queue not paused) one after another,
// so that the workers have looked at the queues that got jobs before.
// Each time a worker fetches, it looks at the queues in a new random
// order and takes a job from the first one that has one and is not
// paused; it fetches again after each job, and an idle worker looks at
// every queue. So each witness was taken after a look at a given earlier
// queue with odds of at least one half: were that queue's pause ignored,
// its job would have been taken instead, and all n witnesses miss it with
// odds of at most 2^-n.
func lookedPast(t *testing.T, h *hosttest.Host, name string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		w := h.Submit(t, name, nil, nil)
		h.WaitStatus(t, w.ID, job.Success, wait)
	}
}
