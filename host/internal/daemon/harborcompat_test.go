package daemon_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gocraft/work"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// Harbor core's dashboard lists the running jobs from gocraft/work's
// worker observations and stops one by looking its job_id up among its
// tasks, whose job_id for a periodic job is the policy's. So a running
// periodic execution must show the policy's ID there (as Harbor queues
// it), and stopping that policy must stop the execution too.
func TestDashboardStopOfARunningPeriodicExecution(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, nil)
	policy := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 60}), map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *"})

	// Core's view: the worker observations of the job service's pool.
	client := work.NewClient("{"+c.Namespace+"}", c.Redis.Pool(t))
	var observed *work.WorkerObservation
	for deadline := time.Now().Add(wait); observed == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no worker observation of a running DEMO execution")
		}
		obs, err := client.WorkerObservations()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range obs {
			if o.IsBusy && o.JobName == "DEMO" {
				observed = o
			}
		}
	}
	if observed.JobID != policy.ID || !strings.Contains(observed.ArgsJSON, `"_job_kind_periodic_":"`) {
		t.Fatalf("the worker observation shows job %q args %s: want the policy %s and the execution's fire time, as Harbor queues it",
			observed.JobID, observed.ArgsJSON, policy.ID)
	}
	// Core finds its task by that job ID, and stops it.
	if got := h.Get(t, observed.JobID); got.ID != policy.ID || got.Kind != job.Periodic {
		t.Fatalf("GET the observed job ID gave %+v, want the policy", got)
	}
	var running *job.Stats
	for _, e := range executions(t, h, policy.ID) {
		if e.Status == job.Running {
			running = e
		}
	}
	if running == nil || !strings.HasPrefix(running.ID, policy.ID+"@") {
		t.Fatalf("no running execution of %s among its executions", policy.ID)
	}
	if r := h.Action(t, observed.JobID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop of the policy: %d %s", r.Status, r.Body)
	}
	h.WaitStatus(t, running.ID, job.Stopped, wait)
	if got := h.Get(t, policy.ID); got.Status != job.Stopped {
		t.Fatalf("policy is %s after its stop", got.Status)
	}
}

// executions lists a job's executions through the API.
func executions(t *testing.T, h *hosttest.Host, id string) []*job.Stats {
	t.Helper()
	r := h.Do(t, http.MethodGet, "/api/v1/jobs/"+id+"/executions?page_size=100", hosttest.Auth, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("executions of %s: %d %s", id, r.Status, r.Body)
	}
	var page []map[string]*job.Stats
	r.JSON(t, &page)
	out := make([]*job.Stats, 0, len(page))
	for _, e := range page {
		out = append(out, e["job"])
	}
	return out
}

// A stop of a job waiting for its retry ends it Stopped in the revision
// of the run that failed: Harbor core counts a run per revision.
func TestStopOfAJobWaitingForItsRetryKeepsItsRevision(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, func(cfg *config.Config) {
		cfg.Retry.BackoffBase = config.Duration(time.Minute) // it waits while the test stops it
		cfg.Retry.BackoffMax = config.Duration(time.Minute)
	})
	sub := h.Subscribe(t)
	st := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
	failed := hosttest.WaitEvent(t, sub, wait, "the retry wait of "+st.ID, func(ev job.Event) bool {
		return ev.JobID == st.ID && ev.Reason == job.RetryWait
	})
	if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	got := h.Get(t, st.ID)
	if got.Status != job.Stopped || got.Revision != failed.Revision {
		t.Fatalf("after the stop: %s in revision %d, want Stopped in the failed run's revision %d", got.Status, got.Revision, failed.Revision)
	}
}

// check_in_at is the second a job checked in, never ahead of the clock
// (core's scheduler drops a trigger whose check_in_at is not newer than
// the last one), and a new run starts without the last run's check-in.
func TestCheckInAtFollowsTheClockAndEachRunStartsWithout(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t, "features", "fixture")
	h := c.Start(t, nil)
	st := h.Submit(t, "CHATTY", map[string]any{"checkins": 30}, nil)
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	if now := time.Now().Unix(); done.CheckIn != "step 30" || done.CheckInAt > now || done.CheckInAt < done.EnqueueTime {
		t.Fatalf("30 check-ins in a moment: check_in %q at %d, now %d: want the last, not ahead of the clock", done.CheckIn, done.CheckInAt, now)
	}

	recv := newReceiver(t)
	flaky := submitWithHook(t, h, "FLAKY", map[string]any{"succeed_on": 2}, recv.url("/flaky"))
	h.WaitStatus(t, flaky.ID, job.Success, wait)
	recv.waitFor(t, flaky.ID, "Success", wait)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	runs := 0
	for _, ev := range recv.events {
		if ev.JobID != flaky.ID || ev.Status != job.Running || ev.CheckIn != "" {
			continue
		}
		runs++
		if md := ev.Metadata; md.CheckIn != "" || md.CheckInAt != 0 {
			t.Errorf("the Running hook of revision %d carries check-in %q at %d from the run before", md.Revision, md.CheckIn, md.CheckInAt)
		}
	}
	if runs != 2 {
		t.Fatalf("%d Running hooks for a job that ran twice", runs)
	}
}

// Harbor refuses cron descriptors (6 fields only); so does Berth, saying
// what to write instead.
func TestCronDescriptorsAreRefused(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for _, spec := range []string{"@every 10s", "@hourly"} {
		r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("DEMO", demo(nil), map[string]any{"kind": "Periodic", "cron_spec": spec}))
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "descriptors") || !strings.Contains(string(r.Body), "6 fields") {
			t.Errorf("periodic job with cron_spec %q: %d %s, want a 400 that says to use 6 fields", spec, r.Status, r.Body)
		}
	}
}

// A submission of one of Harbor's job types that need Harbor's database
// is a 400 that says so by name; one that a Berth plugin serves, when the
// plugin is not loaded, says which plugin.
func TestHarborJobTypesNotServedAreRefusedByName(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	for _, tc := range []struct{ name, want string }{
		{"RETENTION", `job name "RETENTION" is one of Harbor's that Berth does not serve: it applies tag retention rules stored in Harbor's database`},
		{"P2P_PREHEAT", `"P2P_PREHEAT" is one of Harbor's that Berth does not serve`},
		{"WEBHOOK", `job name "WEBHOOK" is Harbor's, served by Berth's webhook plugin, which this service did not load`},
		{"NO_SUCH_JOB", `job name "NO_SUCH_JOB" is unknown: this service runs`},
	} {
		r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request(tc.name, nil, nil))
		var body struct{ Details string }
		r.JSON(t, &body)
		if r.Status != http.StatusBadRequest || !strings.Contains(body.Details, tc.want) {
			t.Errorf("submit %s: %d %s\nwant a 400 with %q", tc.name, r.Status, r.Body, tc.want)
		}
	}

}

// GET /api/v1/config answers the Redis URL as Harbor's job service does:
// Harbor's scheme-less legacy form becomes a redis:// URL, which core's
// dashboard can parse (it cannot parse the bare form).
func TestConfigAnswersALegacyRedisAddressAsAURL(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	addr := c.Redis.Addr() // host:port, Harbor's legacy form
	h := c.Start(t, func(cfg *config.Config) { cfg.WorkerPool.RedisPool.RedisURL = addr })
	r := h.Do(t, http.MethodGet, "/api/v1/config", hosttest.Auth, nil)
	var got struct {
		RedisPoolConfig struct {
			RedisURL  string
			Namespace string
		} `json:"redis_pool_config"`
	}
	r.JSON(t, &got)
	u, err := url.Parse(got.RedisPoolConfig.RedisURL)
	if r.Status != http.StatusOK || err != nil || u.Scheme != "redis" || u.Host != addr {
		t.Fatalf("GET /config with redis_url %q: %d %s; want redis://%s", addr, r.Status, r.Body, addr)
	}
}

// GET /api/v1/config shows the Redis password, as Harbor's job service
// does (core dials the URL for its job-queue dashboard), unless
// api.hide_redis_password is set.
func TestConfigHidesTheRedisPasswordWhenAsked(t *testing.T) {
	t.Parallel()
	const password = "pw-4711-secret"
	srv := redistest.Start(t, redistest.WithPassword(password))
	for _, hide := range []bool{false, true} {
		c := hosttest.NewCluster(t, "demo")
		c.Redis = srv
		h := c.Start(t, func(cfg *config.Config) { cfg.API.HideRedisPassword = hide })
		r := h.Do(t, http.MethodGet, "/api/v1/config", hosttest.Auth, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /config: %d %s", r.Status, r.Body)
		}
		if shown := strings.Contains(string(r.Body), password); shown == hide {
			t.Errorf("hide_redis_password %v: the answer %s the password: %s", hide, map[bool]string{true: "shows", false: "lacks"}[shown], r.Body)
		}
		if hide && !strings.Contains(string(r.Body), srv.Addr()) {
			t.Errorf("hide_redis_password: the answer lost the address: %s", r.Body)
		}
	}
}
