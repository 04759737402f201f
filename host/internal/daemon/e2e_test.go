package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(redistest.WithCleanup(m),
		// A wake-up (gocraft/work's Drain) in flight when a host stops
		// mid-job never returns; see queue.Pool.Wake.
		goleak.IgnoreTopFunction("github.com/gocraft/work.(*worker).drain"),
		goleak.IgnoreAnyFunction("github.com/gocraft/work.(*WorkerPool).Drain"),
	)
}

const wait = 20 * time.Second

func demo(extra map[string]any) map[string]any {
	p := map[string]any{"image": "demo"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func TestDemoRunsThroughEveryStatus(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 1, "log_lines": 3}), nil)
	if st.Status != job.Pending || st.Kind != job.Generic || st.RefLink != "/api/v1/jobs/"+st.ID || !job.ValidID(st.ID) {
		t.Fatalf("submit answered %+v", st)
	}
	running := h.WaitCheckin(t, st.ID, "progress data: %60", wait)
	if running.Status != job.Running || running.CheckInAt == 0 {
		t.Fatalf("while holding: %+v", running)
	}
	// The log is readable while the job runs.
	if log := h.LogText(t, st.ID); !strings.Contains(log, "log line 3 of 3") {
		t.Fatalf("log while running:\n%s", log)
	}
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	if done.Revision != st.Revision || done.UpdateTime < running.UpdateTime {
		t.Fatalf("final stats %+v", done)
	}
	log := h.LogText(t, st.ID)
	for _, want := range []string{"[DEBUG] attempt 1 of DEMO started", "[INFO] log line 1 of 3", "[INFO] DEMO job done"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestStopAndCancelEndAHoldingJob(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"stop", "cancel"} {
		t.Run(strings.ToUpper(op[:1])+op[1:], func(t *testing.T) {
			t.Parallel()
			h := hosttest.NewCluster(t).Start(t, nil)
			st := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600}), nil)
			h.WaitCheckin(t, st.ID, "progress data: %60", wait)
			start := time.Now()
			if r := h.Action(t, st.ID, op); r.Status != http.StatusNoContent {
				t.Fatalf("%s: %d %s", op, r.Status, r.Body)
			}
			h.WaitStatus(t, st.ID, job.Stopped, wait)
			t.Logf("%s took %v to reach Stopped", op, time.Since(start))
			if log := h.LogText(t, st.ID); !strings.Contains(log, "received op command: "+op) {
				t.Fatalf("the plugin did not see %s:\n%s", op, log)
			}
			// Stopping a final job changes nothing and answers 204.
			if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
				t.Fatalf("stop of a stopped job: %d %s", r.Status, r.Body)
			}
			if got := h.Get(t, st.ID); got.Status != job.Stopped {
				t.Fatalf("status after a second stop: %s", got.Status)
			}
		})
	}
}

func TestStopOfAScheduledJobTakesItOutOfTheQueue(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 2})
	if st.Status != job.Scheduled || st.RunAt != st.EnqueueTime+2 {
		t.Fatalf("submit answered %+v", st)
	}
	if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	stoppedAt := h.Get(t, st.ID)
	if stoppedAt.Status != job.Stopped {
		t.Fatalf("status after stop: %s", stoppedAt.Status)
	}
	scheduled, _ := listPage(t, h, "/api/v1/jobs?kind=Scheduled")
	for _, s := range scheduled {
		if s.ID == st.ID {
			t.Fatalf("the stopped job is still waiting for its run time: %+v", s)
		}
	}
	// A witness due no sooner: the mover moves every due entry at once,
	// oldest first, so by the time the witness has run, the stopped job
	// would have been queued and taken.
	witness := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), map[string]any{"kind": "Scheduled", "schedule_delay": 2})
	if witness.RunAt < st.RunAt {
		t.Fatalf("the witness is due at %d, before the stopped job (%d)", witness.RunAt, st.RunAt)
	}
	h.WaitStatus(t, witness.ID, job.Success, wait)
	got := h.Get(t, st.ID)
	if got.Status != job.Stopped || got.Revision != stoppedAt.Revision || got.UpdateTime != stoppedAt.UpdateTime {
		t.Fatalf("a stopped scheduled job ran: %+v", got)
	}
	// A run logs from its start; this job's log is empty.
	if r := h.Do(t, http.MethodGet, "/api/v1/jobs/"+st.ID+"/log", hosttest.Auth, nil); len(r.Body) != 0 && r.Status != http.StatusNotFound {
		t.Fatalf("a stopped scheduled job has a log: %d\n%s", r.Status, r.Body)
	}
}

func TestScheduledJobRuns(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), map[string]any{"kind": "Scheduled", "schedule_delay": 1})
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	if done.RunAt != st.RunAt || done.Kind != job.KindScheduled {
		t.Fatalf("final stats %+v", done)
	}
}

func TestFailingJobEndsInError(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "DEMO", demo(map[string]any{"fail": true}), nil)
	got := h.WaitStatus(t, st.ID, job.Error, wait)
	if got.CheckIn != "progress data: %60" {
		t.Fatalf("stats of the failed attempt: %+v", got)
	}
	if log := h.LogText(t, st.ID); !strings.Contains(log, "attempt 1 failed: DEMO failed as asked") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestCrashEndsInErrorAndTheHostServesTheNextJob(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, func(c *config.Config) {
		c.Retry.BackoffBase = config.Duration(time.Hour) // no retry within the test
		c.Retry.BackoffMax = config.Duration(time.Hour)
	})
	pids := h.PluginPIDs()
	st := h.Submit(t, "DEMO", demo(map[string]any{"crash": true}), nil)
	h.WaitStatus(t, st.ID, job.Error, wait)
	if log := h.LogText(t, st.ID); !strings.Contains(log, "the plugin failed: plugin demo exited during Run") {
		t.Fatalf("log of the crashed job:\n%s", log)
	}
	next := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), nil)
	h.WaitStatus(t, next.ID, job.Success, wait)
	if after := h.PluginPIDs(); fmt.Sprint(after) == fmt.Sprint(pids) {
		t.Fatalf("plugin pids %v did not change after a crash", after)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for _, tc := range []struct {
		name, auth, details string
	}{
		{"Missing", "", "Authorization"},
		{"WrongSecret", "Harbor-Secret nope", "secret"},
		{"WrongScheme", "Bearer " + hosttest.Secret, "Harbor-Secret"},
		{"EmptySecret", "Harbor-Secret ", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, http.MethodPost, "/api/v1/jobs", tc.auth, hosttest.Request("DEMO", demo(nil), nil))
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Details string `json:"details"`
			}
			r.JSON(t, &body)
			if r.Status != http.StatusUnauthorized || body.Code != 10011 || !strings.Contains(strings.ToLower(body.Details), strings.ToLower(tc.details)) {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	}
	if r := h.Do(t, http.MethodGet, "/api/v1/stats", "", nil); r.Status != http.StatusOK {
		t.Fatalf("stats without auth: %d %s", r.Status, r.Body)
	}
}

func TestBadSubmissions(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for _, tc := range []struct {
		name string
		body any
		code int
		want string
	}{
		{"BadJSON", `{"job":`, 10001, "JSON"},
		{"NoJob", `{}`, 10013, `"job"`},
		{"UnknownName", hosttest.Request("NOPE", nil, nil), 10013, `job name "NOPE" is unknown: this service runs BAD_STDERR, CLOCK, DEMO, DIGEST, FLAKY, HANG`},
		{"BadKind", hosttest.Request("DEMO", demo(nil), map[string]any{"kind": "Sometimes"}), 10013, `"job.metadata.kind"`},
		{"ScheduledWithoutDelay", hosttest.Request("DEMO", demo(nil), map[string]any{"kind": "Scheduled"}), 10013, "schedule_delay"},
		{"MissingImage", hosttest.Request("DEMO", map[string]any{}, nil), 10013, `parameter "image" is required`},
		{"ImageNotString", hosttest.Request("DEMO", map[string]any{"image": 7}, nil), 10013, `"image" must be a string`},
		{"WrongPrefix", hosttest.Request("DEMO", map[string]any{"image": "busybox"}, nil), 10013, `must start with "demo", got "busybox"`},
		{"HoldOutOfRange", hosttest.Request("DEMO", demo(map[string]any{"hold_seconds": 4000}), nil), 10013, `"hold_seconds" must be a number from 0 to 3600, got 4000`},
		{"LogLinesOutOfRange", hosttest.Request("DEMO", demo(map[string]any{"log_lines": -1}), nil), 10013, `"log_lines" must be a whole number`},
		{"BadHook", map[string]any{"job": map[string]any{"name": "DEMO", "parameters": demo(nil), "status_hook": "ftp://x", "metadata": map[string]any{"kind": "Generic"}}}, 10013, "status_hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, tc.body)
			var body struct {
				Code    int    `json:"code"`
				Details string `json:"details"`
			}
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || body.Code != tc.code || !strings.Contains(body.Details, tc.want) {
				t.Fatalf("got %d %s\nwant 400, code %d, details containing %q", r.Status, r.Body, tc.code, tc.want)
			}
		})
	}
}

func TestUnknownAndMalformedIDs(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	unknown := job.NewID()
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"GetUnknown", http.MethodGet, "/api/v1/jobs/" + unknown, nil, http.StatusNotFound},
		{"StopUnknown", http.MethodPost, "/api/v1/jobs/" + unknown, map[string]string{"action": "stop"}, http.StatusNotFound},
		{"LogUnknown", http.MethodGet, "/api/v1/jobs/" + unknown + "/log", nil, http.StatusNotFound},
		{"GetMalformed", http.MethodGet, "/api/v1/jobs/not-a-job", nil, http.StatusBadRequest},
		{"LogTraversal", http.MethodGet, "/api/v1/jobs/..%2F..%2Fetc%2Fpasswd/log", nil, http.StatusBadRequest},
		{"UnknownAction", http.MethodPost, "/api/v1/jobs/" + unknown, map[string]string{"action": "pause"}, http.StatusNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, tc.method, tc.path, hosttest.Auth, tc.body)
			if r.Status != tc.status || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s: %d %q %s, want %d with a JSON error", tc.method, tc.path, r.Status, r.Header.Get("Content-Type"), r.Body, tc.status)
			}
		})
	}
}

func TestStatsListsThePool(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	var stats job.PoolStats
	h.Do(t, http.MethodGet, "/api/v1/stats", "", nil).JSON(t, &stats)
	if len(stats.Pools) != 1 || stats.Pools[0].Status != job.PoolHealthy || stats.Pools[0].Concurrency != 4 ||
		strings.Join(stats.Pools[0].JobNames, ",") != "BAD_STDERR,CLOCK,DEMO,DIGEST,FLAKY,HANG,NOOP,PRINT,PROPS,SOLO,SPAWN" {
		t.Fatalf("stats = %+v", stats.Pools)
	}
}

func TestPropertiesAndSubJobs(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, func(c *config.Config) { c.JobProperties = map[string]string{"key": "from-config"} })
	st := h.Submit(t, "PROPS", nil, nil)
	h.WaitCheckin(t, st.ID, "key=from-config id="+st.ID, wait)
	parent := h.Submit(t, "SPAWN", map[string]any{"name": "DEMO", "parameters": demo(map[string]any{"hold_seconds": 0})}, nil)
	got := h.Wait(t, parent.ID, wait, "a launched sub-job", func(s *job.Stats) bool { return strings.HasPrefix(s.CheckIn, "launched ") })
	sub := strings.TrimPrefix(got.CheckIn, "launched ")
	done := h.WaitStatus(t, sub, job.Success, wait)
	if done.UpstreamJobID != parent.ID {
		t.Fatalf("sub-job upstream_job_id = %q, want %s", done.UpstreamJobID, parent.ID)
	}
}

func TestPoisonedPluginStderrDoesNotHurtTheHost(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	st := h.Submit(t, "BAD_STDERR", nil, nil)
	h.WaitStatus(t, st.ID, job.Success, wait)
	if !strings.Contains(h.Log.String(), `{"@message":1}`) {
		t.Fatalf("the poison line is not in the host log")
	}
	h.WaitStatus(t, h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), nil).ID, job.Success, wait)
}

func TestLogsFromAnyHostWithTheRedisBackend(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	redisLogs := func(cfg *config.Config) {
		cfg.JobLoggers = []config.Logger{
			{Name: config.LoggerRedis, Level: "INFO", Settings: map[string]any{config.SettingMaxBytes: 1 << 20}},
			{Name: config.LoggerFile, Level: "INFO", Settings: map[string]any{config.SettingBaseDir: t.TempDir()}},
		}
	}
	a := c.Start(t, redisLogs)
	b := c.Start(t, redisLogs)
	st := a.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600, "log_lines": 5}), nil)
	a.WaitCheckin(t, st.ID, "progress data: %60", wait)
	// While it runs, both hosts serve its log, whichever runs it.
	for _, h := range []*hosttest.Host{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for log := h.LogText(t, st.ID); !strings.Contains(log, "log line 5 of 5"); log = h.LogText(t, st.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("host %s serves this log of the running job:\n%s", h.URL, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if r := b.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d", r.Status)
	}
	b.WaitStatus(t, st.ID, job.Stopped, wait)
	for _, h := range []*hosttest.Host{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for log := h.LogText(t, st.ID); !strings.Contains(log, "received op command: stop"); log = h.LogText(t, st.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("host %s serves this log of the stopped job:\n%s", h.URL, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
