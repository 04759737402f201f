package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// actionOutcome is what an action does to a job in some status.
type actionOutcome int

const (
	// actStops: 204, and the job ends Stopped (row.stopped checks the rest).
	actStops actionOutcome = iota
	// actUnchanged: 204, and nothing changes (an action on a final job).
	actUnchanged
	// actReruns: 204, and the job runs again under its ID in a newer revision
	// (row.reran checks the rest).
	actReruns
	// actConflicts: 409 code 10016, the current status in the details.
	actConflicts
	// actUnimplemented: 501 code 10008.
	actUnimplemented
)

// actionRow is one status of the action table.
type actionRow struct {
	name   string
	mutate func(*config.Config)
	// submit creates a job that is in the row's status when it returns.
	submit func(t *testing.T, e *actionEnv) *job.Stats
	// The outcome of each action, in the order the cells run.
	stop, cancel, retry, pause actionOutcome
	// stopped checks a job that stop or cancel (op) ended.
	stopped func(t *testing.T, e *actionEnv, before *job.Stats, op string)
	// reran checks a job that retry ran again.
	reran func(t *testing.T, e *actionEnv, before *job.Stats)
	// finish runs after the row's cells, with the IDs of every cell's job.
	finish func(t *testing.T, e *actionEnv, ids map[string]string)
}

// actionEnv is the host of a row and its Redis namespace.
type actionEnv struct {
	c   *hosttest.Cluster
	h   *hosttest.Host
	rdb *nsRedis
}

// pausePrint pauses or resumes the PRINT queue (gocraft/work's pause key).
func (e *actionEnv) pausePrint(t *testing.T, on bool) {
	if on {
		e.rdb.do(t, "SET", e.rdb.key("jobs:PRINT:paused"), "1")
	} else {
		e.rdb.do(t, "DEL", e.rdb.key("jobs:PRINT:paused"))
	}
}

const farBackoff = config.Duration(10 * time.Minute)

// TestActionsInEveryStatus runs every action on a job in every status.
//
//	               stop       cancel     retry      pause
//	Pending        stops      stops      409        501
//	Scheduled      stops      stops      409        501
//	Running        stops      stops      409        501
//	RetryWaiting   stops      stops      reruns     501
//	Error (final)  unchanged  unchanged  reruns     501
//	Success        unchanged  unchanged  409        501
//	Stopped        unchanged  unchanged  409        501
//	Periodic       stops      stops      409        501
//	its execution  stops      stops      409        501
func TestActionsInEveryStatus(t *testing.T) {
	t.Parallel()
	rows := []actionRow{
		{
			name: "Pending", stop: actStops, cancel: actStops, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				st := e.h.Submit(t, "PRINT", map[string]any{"text": "held"}, nil)
				if got := e.h.Get(t, st.ID); got.Status != job.Pending {
					t.Fatalf("a job of a paused queue is %s", got.Status)
				}
				if n := e.rdb.listEntries(t, "jobs:PRINT", st.ID); n != 1 {
					t.Fatalf("the pending job has %d entries in its queue", n)
				}
				return st
			},
			stopped: func(t *testing.T, e *actionEnv, before *job.Stats, _ string) {
				// stop and cancel run first: the queue held only this job.
				if n := e.rdb.int(t, "LLEN", e.rdb.key("jobs:PRINT")); n != 0 {
					t.Fatalf("LLEN of the PRINT queue after the stop of its only job: %d", n)
				}
			},
			finish: func(t *testing.T, e *actionEnv, ids map[string]string) {
				e.pausePrint(t, false)
				// Once resumed, the queue runs a new job and those left
				// Pending, but never the stopped ones.
				ctl := e.h.Submit(t, "PRINT", map[string]any{"text": "after"}, nil)
				e.h.WaitStatus(t, ctl.ID, job.Success, wait)
				e.h.WaitStatus(t, ids["retry"], job.Success, wait)
				e.h.WaitStatus(t, ids["pause"], job.Success, wait)
				for _, op := range []string{"stop", "cancel"} {
					if got := e.h.Get(t, ids[op]); got.Status != job.Stopped {
						t.Errorf("the %s job is %s after its queue resumed", op, got.Status)
					}
					if log := e.h.LogText(t, ids[op]); log != "" {
						t.Errorf("the %s job ran after its queue resumed:\n%s", op, log)
					}
				}
			},
		},
		{
			name: "Scheduled", stop: actStops, cancel: actStops, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				st := e.h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})
				if len(e.rdb.zsetScores(t, "scheduled", st.ID)) != 1 {
					t.Fatalf("the scheduled job is not in the scheduled set")
				}
				return st
			},
			stopped: func(t *testing.T, e *actionEnv, before *job.Stats, _ string) {
				if s := e.rdb.zsetScores(t, "scheduled", before.ID); len(s) != 0 {
					t.Fatalf("the stopped job is still in the scheduled set at %v", s)
				}
				listed, r := listPage(t, e.h, "/api/v1/jobs?kind=Scheduled&page_size=1000")
				for _, s := range listed {
					if s.ID == before.ID {
						t.Fatalf("the stopped job is listed as scheduled: %s", r.Body)
					}
				}
			},
		},
		{
			name: "Running", stop: actStops, cancel: actStops, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				st := e.h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600}), nil)
				return e.h.WaitCheckin(t, st.ID, "progress data: %60", wait)
			},
			stopped: func(t *testing.T, e *actionEnv, before *job.Stats, op string) {
				log := e.h.LogText(t, before.ID)
				other := map[string]string{"stop": "cancel", "cancel": "stop"}[op]
				if !strings.Contains(log, "received op command: "+op) || strings.Contains(log, "received op command: "+other) {
					t.Fatalf("the plugin did not see %s (and only %s):\n%s", op, op, log)
				}
			},
			finish: func(t *testing.T, e *actionEnv, ids map[string]string) {
				// End the jobs left running, so that the host stops at once.
				for _, op := range []string{"retry", "pause"} {
					if r := e.h.Action(t, ids[op], "stop"); r.Status != http.StatusNoContent {
						t.Fatalf("stop: %d %s", r.Status, r.Body)
					}
					e.h.WaitStatus(t, ids[op], job.Stopped, wait)
				}
			},
		},
		{
			// FLAKY fails its first attempt and waits 10 minutes for a retry.
			name: "RetryWaiting", stop: actStops, cancel: actStops, retry: actReruns, pause: actUnimplemented,
			mutate: func(c *config.Config) { c.Retry.BackoffBase, c.Retry.BackoffMax = farBackoff, farBackoff },
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				st := e.h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
				got := e.h.Wait(t, st.ID, wait, "a failed first attempt", func(s *job.Stats) bool {
					return s.Status == job.Error && strings.HasPrefix(s.CheckIn, "attempt 1 ")
				})
				pollUntil(t, wait, "an entry in the retry set", func() bool { return len(e.rdb.zsetScores(t, "retry", st.ID)) == 1 })
				return got
			},
			stopped: func(t *testing.T, e *actionEnv, before *job.Stats, _ string) {
				if s := e.rdb.zsetScores(t, "retry", before.ID); len(s) != 0 {
					t.Fatalf("the stopped job is still in the retry set at %v", s)
				}
			},
			reran: func(t *testing.T, e *actionEnv, before *job.Stats) {
				again := e.h.Wait(t, before.ID, wait, "a failed second attempt", func(s *job.Stats) bool {
					return s.Status == job.Error && strings.HasPrefix(s.CheckIn, "attempt 2 ")
				})
				if again.Revision <= before.Revision {
					t.Fatalf("the re-run has revision %d, not newer than %d", again.Revision, before.Revision)
				}
				// The second failure waits for its own retry; the first
				// one's retry is gone.
				pollUntil(t, wait, "the second failure's retry entry", func() bool { return len(e.rdb.zsetScores(t, "retry", before.ID)) > 0 })
				if s := e.rdb.zsetScores(t, "retry", before.ID); len(s) != 1 {
					t.Fatalf("after the retry action and a second failure, the retry set holds %d entries of the job (scores %v)", len(s), s)
				}
			},
		},
		{
			// SPAWN declares ShouldRetry false: launching NOPE fails it for good.
			name: "FinalError", stop: actUnchanged, cancel: actUnchanged, retry: actReruns, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				st := e.h.Submit(t, "SPAWN", map[string]any{"name": "NOPE"}, nil)
				return e.h.WaitStatus(t, st.ID, job.Error, wait)
			},
			reran: func(t *testing.T, e *actionEnv, before *job.Stats) {
				e.h.Wait(t, before.ID, wait, "a second failed run", func(s *job.Stats) bool {
					return s.Status == job.Error && s.Revision > before.Revision
				})
				if log := e.h.LogText(t, before.ID); strings.Count(log, "failed:") != 2 {
					t.Fatalf("log after a retry:\n%s", log)
				}
			},
		},
		{
			name: "Success", stop: actUnchanged, cancel: actUnchanged, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				return e.h.WaitStatus(t, e.h.Submit(t, "NOOP", nil, nil).ID, job.Success, wait)
			},
		},
		{
			name: "Stopped", stop: actUnchanged, cancel: actUnchanged, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				st := e.h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})
				if r := e.h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
					t.Fatalf("stop: %d %s", r.Status, r.Body)
				}
				return e.h.WaitStatus(t, st.ID, job.Stopped, wait)
			},
		},
		{
			name: "Periodic", stop: actStops, cancel: actStops, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				return e.h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "0 0 0 1 1 *"})
			},
			stopped: func(t *testing.T, e *actionEnv, before *job.Stats, _ string) {
				if n := e.rdb.int(t, "SISMEMBER", e.rdb.key("berth:policies"), before.ID); n != 0 {
					t.Fatalf("the stopped policy is still active")
				}
				policies, r := listPage(t, e.h, "/api/v1/jobs?kind=Periodic")
				for _, p := range policies {
					if p.ID == before.ID {
						t.Fatalf("the stopped policy is listed: %s", r.Body)
					}
				}
			},
		},
		{
			// An execution of a policy, waiting for its fire time.
			name: "PeriodicExecution", stop: actStops, cancel: actStops, retry: actConflicts, pause: actUnimplemented,
			submit: func(t *testing.T, e *actionEnv) *job.Stats {
				fire := time.Now().UTC().Add(20 * time.Second)
				spec := fmt.Sprintf("%d %d %d * * *", fire.Second(), fire.Minute(), fire.Hour())
				policy := e.h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Periodic", "cron_spec": spec})
				var exec *job.Stats
				pollUntil(t, wait, "an execution", func() bool {
					execs, _ := listPage(t, e.h, "/api/v1/jobs/"+policy.ID+"/executions")
					if len(execs) == 1 {
						exec = execs[0]
					}
					return exec != nil
				})
				if exec.Status != job.Scheduled || len(e.rdb.zsetScores(t, "scheduled", exec.ID)) != 1 {
					t.Fatalf("the execution is %s, in the scheduled set %d times", exec.Status, len(e.rdb.zsetScores(t, "scheduled", exec.ID)))
				}
				return exec
			},
			stopped: func(t *testing.T, e *actionEnv, before *job.Stats, _ string) {
				if s := e.rdb.zsetScores(t, "scheduled", before.ID); len(s) != 0 {
					t.Fatalf("the stopped execution is still in the scheduled set at %v", s)
				}
				// Its policy goes on.
				if got := e.h.Get(t, before.UpstreamJobID); got.Status != job.Scheduled {
					t.Fatalf("the policy of a stopped execution is %s", got.Status)
				}
			},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			c := hosttest.NewCluster(t)
			e := &actionEnv{c: c, h: c.Start(t, row.mutate), rdb: openNS(t, c)}
			if row.name == "Pending" {
				e.pausePrint(t, true)
			}
			ids := map[string]string{}
			cells := []struct {
				action string
				want   actionOutcome
			}{{"stop", row.stop}, {"cancel", row.cancel}, {"retry", row.retry}, {"pause", row.pause}}
			for _, cell := range cells {
				ok := t.Run(strings.ToUpper(cell.action[:1])+cell.action[1:], func(t *testing.T) {
					before := row.submit(t, e)
					ids[cell.action] = before.ID
					runCell(t, e, row, cell.action, cell.want, before)
				})
				if !ok {
					return
				}
			}
			if row.finish != nil {
				row.finish(t, e, ids)
			}
		})
	}
}

// runCell acts on a job and checks the outcome.
func runCell(t *testing.T, e *actionEnv, row actionRow, action string, want actionOutcome, before *job.Stats) {
	r := e.h.Action(t, before.ID, action)
	switch want {
	case actStops:
		if r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("%s of a %s job: %d %s, want 204", action, row.name, r.Status, r.Body)
		}
		got := e.h.WaitStatus(t, before.ID, job.Stopped, wait)
		if got.Revision < before.Revision {
			t.Fatalf("the stopped job went back to revision %d from %d", got.Revision, before.Revision)
		}
		if row.stopped != nil {
			row.stopped(t, e, before, action)
		}
	case actUnchanged:
		if r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("%s of a %s job: %d %s, want 204", action, row.name, r.Status, r.Body)
		}
		sameAsBefore(t, e, before)
	case actReruns:
		if r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("%s of a %s job: %d %s, want 204", action, row.name, r.Status, r.Body)
		}
		row.reran(t, e, before)
	case actConflicts:
		body := errorOf(t, r, http.StatusConflict)
		if body.Code != 10016 || body.Message != "mismatch job status" || !strings.Contains(body.Details, string(before.Status)) {
			t.Fatalf("%s of a %s job: %s, want code 10016 naming status %s", action, row.name, r.Body, before.Status)
		}
		sameAsBefore(t, e, before)
	case actUnimplemented:
		body := errorOf(t, r, http.StatusNotImplemented)
		if body.Code != 10008 || !strings.Contains(body.Details, action) {
			t.Fatalf("%s of a %s job: %s, want code 10008 naming the action", action, row.name, r.Body)
		}
		sameAsBefore(t, e, before)
	}
}

// sameAsBefore checks that a job kept its status and revision.
func sameAsBefore(t *testing.T, e *actionEnv, before *job.Stats) {
	t.Helper()
	got := e.h.Get(t, before.ID)
	if got.Status != before.Status || got.Revision != before.Revision {
		t.Fatalf("the job changed: %s revision %d, was %s revision %d", got.Status, got.Revision, before.Status, before.Revision)
	}
}

func TestActionsOnAnUnknownJob(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for _, id := range []string{job.NewID(), job.NewID() + "@1700000000"} {
		for _, action := range []string{"stop", "cancel", "retry"} {
			body := errorOf(t, h.Action(t, id, action), http.StatusNotFound)
			if body.Code != 10010 || body.Details != id {
				t.Errorf("%s of unknown job %s: %+v", action, id, body)
			}
		}
		// The action is checked before the job is looked up, as Harbor
		// does: an unknown action is 501 whatever the job.
		if body := errorOf(t, h.Action(t, id, "pause"), http.StatusNotImplemented); body.Code != 10008 {
			t.Errorf("pause of unknown job %s: %+v", id, body)
		}
	}
}

// TestStoppedRetryWaitingJobStaysStopped stops a job waiting for a short
// retry and checks that it does not run once the retry time has passed,
// while another job's retry does run.
func TestStoppedRetryWaitingJobStaysStopped(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(c *config.Config) {
		c.Retry.BackoffBase = config.Duration(time.Second)
		c.Retry.BackoffMax = config.Duration(time.Second)
	})
	rdb := openNS(t, c)
	failedOnce := func(s *job.Stats) bool { return s.Status == job.Error && strings.HasPrefix(s.CheckIn, "attempt 1 ") }
	sub := h.Subscribe(t)
	stopped := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
	h.Wait(t, stopped.ID, wait, "a failed first attempt", failedOnce)
	// The control job fails after the stopped one: each of its retries is
	// due at least a second after the failure before it, so its second
	// retry at the latest is due no sooner than the stopped job's.
	control := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
	var scores []int64
	pollUntil(t, wait, "an entry in the retry set", func() bool {
		scores = rdb.zsetScores(t, "retry", stopped.ID)
		return len(scores) == 1
	})
	for _, op := range []string{"stop", "cancel"} {
		if r := h.Action(t, stopped.ID, op); r.Status != http.StatusNoContent {
			t.Fatalf("%s: %d %s", op, r.Status, r.Body)
		}
	}
	if got := h.Get(t, stopped.ID); got.Status != job.Stopped {
		t.Fatalf("after stop: %s", got.Status)
	}
	if s := rdb.zsetScores(t, "retry", stopped.ID); len(s) != 0 {
		t.Fatalf("the stopped job is still in the retry set at %v", s)
	}
	h.Wait(t, control.ID, wait, "the control job's second attempt", func(s *job.Stats) bool { return strings.HasPrefix(s.CheckIn, "attempt 2 ") })
	// Past the stopped job's retry time: a retry of the control job due no
	// sooner has run. Due entries are moved to their queue oldest first
	// and never early, so by the time it ended, the stopped job, had its
	// entry stayed, would have been queued and taken.
	var retryAt int64
	retried := false
	hosttest.WaitEvent(t, sub, wait, fmt.Sprintf("the end of a control retry due at %d or later", scores[0]), func(ev job.Event) bool {
		if ev.JobID != control.ID {
			return false
		}
		switch {
		case retried:
			return ev.Reason == job.RetryWait || ev.Reason == job.Failed
		case ev.Reason == job.RetryWait:
			retryAt = ev.RetryAt
		case ev.Reason == job.Retried && retryAt >= scores[0]:
			retried = true
		case ev.Reason == job.Failed:
			t.Fatalf("the control job's retries were all due before %d", scores[0])
		}
		return false
	})
	got := h.Get(t, stopped.ID)
	if got.Status != job.Stopped || !strings.HasPrefix(got.CheckIn, "attempt 1 ") {
		t.Fatalf("the stopped job after its retry time: %+v", got)
	}
	if log := h.LogText(t, stopped.ID); strings.Contains(log, "attempt 2 of") {
		t.Fatalf("the stopped job ran again:\n%s", log)
	}
}

// TestCancelReachesAJobOnAnotherHost sends the action to a host that does
// not run the job.
func TestCancelReachesAJobOnAnotherHost(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := c.Start(t, nil)
	st := a.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600}), nil)
	a.WaitCheckin(t, st.ID, "progress data: %60", wait)
	b := c.Start(t, nil) // started after the job: it cannot be running it
	if r := b.Action(t, st.ID, "cancel"); r.Status != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	b.WaitStatus(t, st.ID, job.Stopped, wait)
	log := a.LogText(t, st.ID) // FILE job logs stay on the host that ran the job
	if !strings.Contains(log, "received op command: cancel") {
		t.Fatalf("the plugin did not see the cancel:\n%s", log)
	}
	// Cancelled, not failed: no retry follows.
	if got := a.Get(t, st.ID); got.Status != job.Stopped || strings.Contains(log, "retrying") {
		t.Fatalf("after the cancel: %+v\n%s", got, log)
	}
}

func TestActionBodies(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   int
	}{
		{"BadJSON", `{"action":`, http.StatusBadRequest, 10001},
		{"Empty", ``, http.StatusBadRequest, 10001},
		{"NotAnObject", `["stop"]`, http.StatusBadRequest, 10001},
		{"NoAction", `{}`, http.StatusBadRequest, 10013},
		{"EmptyAction", `{"action":""}`, http.StatusBadRequest, 10013},
		{"WrongCase", `{"action":"Stop"}`, http.StatusNotImplemented, 10008},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if body := errorOf(t, h.Do(t, http.MethodPost, "/api/v1/jobs/"+st.ID, hosttest.Auth, tc.body), tc.status); body.Code != tc.code {
				t.Fatalf("%+v, want code %d", body, tc.code)
			}
			if got := h.Get(t, st.ID); got.Status != job.Scheduled {
				t.Fatalf("the job is %s", got.Status)
			}
		})
	}
}
