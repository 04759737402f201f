package daemon_test

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// checkTTL checks that a key's TTL is want, give or take a minute (the
// key was written a moment ago); want -1 means no TTL.
func checkTTL(t *testing.T, rdb *nsRedis, suffix string, want time.Duration, what string) {
	t.Helper()
	got := rdb.ttl(t, suffix)
	if want < 0 {
		if got != -1 {
			t.Errorf("%s (%s): TTL %d, want none", what, suffix, got)
		}
		return
	}
	w := int64(want / time.Second)
	if got > w || got < w-60 {
		t.Errorf("%s (%s): TTL %ds, want %ds", what, suffix, got, w)
	}
}

func TestStatsTTLsPerFinalStatus(t *testing.T) {
	t.Parallel()
	const success, stopped, failed = 2 * time.Hour, 3 * time.Hour, 4 * time.Hour
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(c *config.Config) {
		c.Stats.SuccessTTL, c.Stats.StoppedTTL, c.Stats.ErrorTTL = config.Duration(success), config.Duration(stopped), config.Duration(failed)
		c.Retry.BackoffBase, c.Retry.BackoffMax = farBackoff, farBackoff
	})
	rdb := openNS(t, c)
	stats := func(id string) string { return "job_stats:" + id }

	ok := h.Submit(t, "NOOP", nil, nil)
	bad := h.Submit(t, "SPAWN", map[string]any{"name": "NOPE"}, nil)
	flaky := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
	held := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600}), nil)
	later := h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})
	policy := h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "0 0 0 1 1 *"})
	parent := h.Submit(t, "SPAWN", map[string]any{"name": "NOOP"}, nil)

	// Not final: no TTL.
	h.WaitCheckin(t, held.ID, "progress data: %60", wait)
	checkTTL(t, rdb, stats(held.ID), -1, "a Running job")
	checkTTL(t, rdb, stats(later.ID), -1, "a Scheduled job")
	checkTTL(t, rdb, stats(policy.ID), -1, "an active periodic policy")

	h.WaitStatus(t, ok.ID, job.Success, wait)
	checkTTL(t, rdb, stats(ok.ID), success, "a Success job")
	h.WaitStatus(t, bad.ID, job.Error, wait)
	checkTTL(t, rdb, stats(bad.ID), failed, "an Error job")
	h.Wait(t, flaky.ID, wait, "a failed attempt", func(s *job.Stats) bool { return s.Status == job.Error })
	// Waiting for its retry, it is not final: no TTL, so that it outlives
	// the wait (see TestRetryWaitingStatsOutliveTheirRetry).
	checkTTL(t, rdb, stats(flaky.ID), -1, "an Error job waiting for a retry")

	for _, tc := range []struct{ id, op string }{{held.ID, "stop"}, {later.ID, "cancel"}, {policy.ID, "stop"}, {flaky.ID, "stop"}} {
		if r := h.Action(t, tc.id, tc.op); r.Status != http.StatusNoContent {
			t.Fatalf("%s %s: %d %s", tc.op, tc.id, r.Status, r.Body)
		}
		h.WaitStatus(t, tc.id, job.Stopped, wait)
		checkTTL(t, rdb, stats(tc.id), stopped, "a job ended by "+tc.op)
	}

	// A retried job keeps no TTL while it runs again, then takes its new
	// final status's.
	if r := h.Action(t, bad.ID, "retry"); r.Status != http.StatusNoContent {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	h.Wait(t, bad.ID, wait, "a second failure", func(s *job.Stats) bool {
		return s.Status == job.Error && strings.Count(h.LogText(t, bad.ID), "failed:") == 2
	})
	checkTTL(t, rdb, stats(bad.ID), failed, "a retried Error job")

	// A parent's sub-jobs and its executions set.
	got := h.Wait(t, parent.ID, wait, "a sub-job", func(s *job.Stats) bool { return s.Status == job.Success })
	sub := strings.TrimPrefix(got.CheckIn, "launched ")
	h.WaitStatus(t, sub, job.Success, wait)
	checkTTL(t, rdb, stats(parent.ID), success, "a parent job")
	checkTTL(t, rdb, stats(sub), success, "a sub-job")
	if ttl := rdb.ttl(t, "executions:"+parent.ID); ttl <= 0 {
		t.Errorf("the executions set of a parent job has TTL %d", ttl)
	}
}

// execSample is the executions set of a policy at one moment.
type execSample struct {
	at           time.Duration
	total, ended int
}

// sampleExecutions watches a policy's executions for d.
func sampleExecutions(t *testing.T, rdb *nsRedis, policyID string, d time.Duration) []execSample {
	t.Helper()
	var out []execSample
	start := time.Now()
	for time.Since(start) < d {
		ids := rdb.strings(t, "ZRANGE", rdb.key("executions:"+policyID), 0, -1)
		s := execSample{at: time.Since(start).Round(100 * time.Millisecond), total: len(ids)}
		for _, id := range ids {
			st, _ := rdb.do(t, "HGET", rdb.key("job_stats:"+id), "status").([]byte)
			if job.Status(st).Final() {
				s.ended++
			}
		}
		out = append(out, s)
		time.Sleep(250 * time.Millisecond)
	}
	return out
}

// TestPeriodicExecutionsStayBounded runs a policy firing every second with
// max_executions 3: the set holds the executions scheduled ahead (the
// scheduler's 30 s horizon) and a few ended ones, never dozens, and every
// stats hash of an execution is in the set or expires.
func TestPeriodicExecutionsStayBounded(t *testing.T) {
	t.Parallel()
	const limit = 3
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(c *config.Config) { c.Periodic.MaxExecutions = limit })
	rdb := openNS(t, c)
	policy := h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *"})
	samples := sampleExecutions(t, rdb, policy.ID, 6500*time.Millisecond)
	maxEnded := 0
	for _, s := range samples {
		maxEnded = max(maxEnded, s.ended)
		// 31 ahead at most (30 s horizon, both ends), and at most the runs
		// of one scheduler period (10 s) ended since the last trim.
		if s.total > limit+31 || s.ended > 12 {
			t.Errorf("at %v: %d executions, %d ended", s.at, s.total, s.ended)
		}
	}
	if maxEnded < 3 {
		t.Errorf("the policy ran %d times in 6.5 s", maxEnded)
	}
	last := samples[len(samples)-1]
	t.Logf("after %v: %d executions in the set, %d ended (max %d)", last.at, last.total, last.ended, maxEnded)
	if r := h.Action(t, policy.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	if ttl := rdb.ttl(t, "executions:"+policy.ID); ttl <= 0 {
		t.Errorf("the executions set of a stopped policy has TTL %d", ttl)
	}
	// No stats hash of an execution is left outside the set without a TTL.
	for _, key := range rdb.scan(t, "job_stats:"+policy.ID+"@*") {
		id := strings.TrimPrefix(key, rdb.key("job_stats:"))
		if rdb.do(t, "ZSCORE", rdb.key("executions:"+policy.ID), id) == nil && rdb.int(t, "TTL", key) == -1 {
			t.Errorf("execution %s is out of the set and has no TTL", id)
		}
	}
}

// TestPeriodicCapKeepsTheLatestEndedExecutions: with max_executions N, a
// policy keeps its N latest ended executions (plus those still ahead).
func TestPeriodicCapKeepsTheLatestEndedExecutions(t *testing.T) {
	t.Parallel()
	const limit = 3
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(c *config.Config) { c.Periodic.MaxExecutions = limit })
	rdb := openNS(t, c)
	policy := h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *"})
	for _, s := range sampleExecutions(t, rdb, policy.ID, 11500*time.Millisecond) {
		// After the first runs, the latest `limit` ended ones are kept.
		if s.ended > limit+1 || (s.at > 4*time.Second && s.ended < limit-1) {
			t.Errorf("at %v: %d ended executions kept, want about %d", s.at, s.ended, limit)
		}
	}
}

// keyClass sorts the keys of a namespace.
type keyClass struct {
	name string
	re   *regexp.Regexp
	// perJob: the class grows with the number of jobs; each key must
	// have a TTL unless it belongs to a job still alive.
	perJob bool
}

var keyClasses = []keyClass{
	{"job_stats:<id>", regexp.MustCompile(`^job_stats:[0-9a-f]{24}(@[0-9]+)?$`), true},
	{"executions:<id>", regexp.MustCompile(`^executions:[0-9a-f]{24}$`), true},
	{"unique:<name>:<args>", regexp.MustCompile(`^unique:`), true},
	{"berth:log:<id>", regexp.MustCompile(`^berth:log:`), true},
	{"known_jobs", regexp.MustCompile(`^known_jobs$`), false},
	{"jobs:<name>", regexp.MustCompile(`^jobs:[A-Z_]+$`), false},
	{"jobs:<name>:paused|lock|lock_info|max_concurrency", regexp.MustCompile(`^jobs:[A-Z_]+:(paused|lock|lock_info|max_concurrency)$`), false},
	{"jobs:<name>:<pool>:inprogress", regexp.MustCompile(`^jobs:[A-Z_]+:[0-9a-f]+:inprogress$`), false},
	{"scheduled", regexp.MustCompile(`^scheduled$`), false},
	{"retry", regexp.MustCompile(`^retry$`), false},
	{"dead", regexp.MustCompile(`^dead$`), false},
	{"worker_pools", regexp.MustCompile(`^worker_pools$`), false},
	{"worker_pools:<pool>", regexp.MustCompile(`^worker_pools:[0-9a-f]+$`), false},
	{"worker:<worker>", regexp.MustCompile(`^worker:[0-9a-f]+$`), false},
	{"last_periodic_enqueue", regexp.MustCompile(`^last_periodic_enqueue$`), false},
	{"berth:policies", regexp.MustCompile(`^berth:policies$`), false},
	// One listing index per kind, status and job name: bounded by the
	// job types, holding only jobs whose stats exist (checked below).
	{"berth:idx:<kind>:<status>:<name>", regexp.MustCompile(`^berth:idx:(Generic|Scheduled|Periodic):(Pending|Scheduled|Running|Stopped|Error|Success):[A-Z_]+$`), false},
}

func keyClassOf(suffix string) (keyClass, bool) {
	for _, c := range keyClasses {
		if c.re.MatchString(suffix) {
			return c, true
		}
	}
	return keyClass{}, false
}

// keySurvey is what a SCAN of the namespace found.
type keySurvey struct {
	counts map[string]int  // "class (TTL|no TTL)" -> keys
	noTTL  map[string]bool // keys without a TTL
}

// surveyKeys classifies every key of the namespace and checks that each
// key that grows with the number of jobs has a TTL (alive lists the jobs
// that may legitimately have none), and that the queues and sets hold only
// live jobs.
func surveyKeys(t *testing.T, h *hosttest.Host, rdb *nsRedis, alive map[string]bool) keySurvey {
	t.Helper()
	s := keySurvey{counts: map[string]int{}, noTTL: map[string]bool{}}
	prefix := rdb.key("")
	for _, key := range rdb.scanAll(t) {
		suffix := strings.TrimPrefix(key, prefix)
		ttl := rdb.int(t, "TTL", key)
		if ttl == -2 {
			continue // expired or deleted since the SCAN
		}
		c, ok := keyClassOf(suffix)
		name := c.name
		if !ok {
			name = "unknown: " + suffix
		}
		if ttl == -1 {
			s.noTTL[suffix] = true
			s.counts[name+" (no TTL)"]++
		} else {
			s.counts[name+" (TTL)"]++
		}
		switch {
		case !ok && ttl == -1:
			t.Errorf("key %s has no TTL and is of no known bounded class", suffix)
		case ok && c.perJob && ttl == -1:
			id := strings.TrimPrefix(suffix, "job_stats:")
			id = strings.TrimPrefix(id, "executions:")
			if !alive[id] {
				t.Errorf("key %s grows with the jobs run and has no TTL", suffix)
			}
		}
		// The queues and sets of gocraft/work hold only live jobs.
		var entries []string
		switch {
		case c.name == "jobs:<name>":
			entries = rdb.strings(t, "LRANGE", key, 0, -1)
		case c.name == "scheduled" || c.name == "retry" || c.name == "dead":
			entries = rdb.strings(t, "ZRANGE", key, 0, -1)
		case c.name == "berth:policies":
			entries = rdb.strings(t, "SMEMBERS", key)
		}
		for _, e := range entries {
			id := e
			if c.name != "berth:policies" {
				id = entryID(e)
			}
			if !alive[id] {
				st := h.Get(t, id)
				t.Errorf("%s holds job %s, which is %s", suffix, id, st.Status)
			}
		}
		// A listing index holds only jobs of its kind, status and name.
		if c.name == "berth:idx:<kind>:<status>:<name>" {
			parts := strings.SplitN(strings.TrimPrefix(suffix, "berth:idx:"), ":", 3)
			for _, id := range rdb.strings(t, "ZRANGE", key, 0, -1) {
				r := h.Do(t, http.MethodGet, "/api/v1/jobs/"+id, hosttest.Auth, nil)
				if r.Status != http.StatusOK {
					t.Errorf("%s holds job %s, whose stats are gone (%d)", suffix, id, r.Status)
					continue
				}
				if st := r.Stats(t); string(st.Kind) != parts[0] || string(st.Status) != parts[1] || st.Name != parts[2] {
					t.Errorf("%s holds job %s, a %s %s job in %s", suffix, id, st.Kind, st.Name, st.Status)
				}
			}
		}
	}
	return s
}

func (s keySurvey) String() string {
	lines := make([]string, 0, len(s.counts))
	for k, n := range s.counts {
		lines = append(lines, fmt.Sprintf("  %4d %s", n, k))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// runMix runs a mix of about 60 jobs of every kind and fate to their end
// and returns the IDs of every job it made (sub-jobs and executions too).
func runMix(t *testing.T, h *hosttest.Host) []string {
	t.Helper()
	var ids, holders, later, parents, flaky []string
	add := func(st *job.Stats) *job.Stats { ids = append(ids, st.ID); return st }
	for i := 0; i < 15; i++ {
		add(h.Submit(t, "NOOP", nil, nil))
	}
	for i := 0; i < 4; i++ {
		add(h.Submit(t, "SPAWN", map[string]any{"name": "NOPE"}, nil))                            // fails for good
		flaky = append(flaky, add(h.Submit(t, "FLAKY", map[string]any{"succeed_on": 2}, nil)).ID) // fails, retried, succeeds
		holders = append(holders, add(h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600}), nil)).ID)
		add(h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), map[string]any{"kind": "Scheduled", "schedule_delay": 1}))
		later = append(later, add(h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})).ID)
		add(h.Submit(t, "NOOP", map[string]any{"n": float64(i)}, map[string]any{"unique": true}))
		parents = append(parents, add(h.Submit(t, "SPAWN", map[string]any{"name": "NOOP"}, nil)).ID)
	}
	// A unique job refused as a duplicate, then stopped.
	uniq := map[string]any{"kind": "Scheduled", "schedule_delay": 60, "unique": true}
	later = append(later, add(h.Submit(t, "DEMO", demo(map[string]any{"log_lines": 1}), uniq)).ID)
	if r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("DEMO", demo(map[string]any{"log_lines": 1}), uniq)); r.Status != http.StatusConflict {
		t.Fatalf("duplicate unique job: %d %s", r.Status, r.Body)
	}
	add(h.Submit(t, "PROPS", nil, nil)) // no property "key": Error
	policy := add(h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *"}))

	for _, id := range holders {
		h.WaitCheckin(t, id, "progress data: %60", wait)
	}
	for i, id := range append(holders, later...) {
		op := []string{"stop", "cancel"}[i%2]
		if r := h.Action(t, id, op); r.Status != http.StatusNoContent {
			t.Fatalf("%s %s: %d %s", op, id, r.Status, r.Body)
		}
	}
	// Retry one failed job.
	h.WaitStatus(t, ids[15], job.Error, wait)
	if r := h.Action(t, ids[15], "retry"); r.Status != http.StatusNoContent {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	for _, id := range parents {
		st := h.WaitStatus(t, id, job.Success, wait)
		ids = append(ids, strings.TrimPrefix(st.CheckIn, "launched "))
	}
	// Let the policy run a few times, then stop it.
	h.Wait(t, policy.ID, wait, "runs of the policy", func(*job.Stats) bool {
		execs, _ := listPage(t, h, "/api/v1/jobs/"+policy.ID+"/executions?non_dead_only=false&page_size=1000")
		n := 0
		for _, e := range execs {
			if e.Status.Final() {
				n++
			}
		}
		return n >= 2
	})
	if r := h.Action(t, policy.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop policy: %d %s", r.Status, r.Body)
	}
	execs, _ := listPage(t, h, "/api/v1/jobs/"+policy.ID+"/executions?page_size=1000")
	for _, e := range execs {
		ids = append(ids, e.ID)
	}
	// An Error job may be waiting for a retry: FLAKY ones must succeed.
	for _, id := range flaky {
		h.WaitStatus(t, id, job.Success, wait)
	}
	for _, id := range ids {
		h.Wait(t, id, wait, "a final status", func(s *job.Stats) bool { return s.Status.Final() })
	}
	return ids
}

// TestNothingGrowsWithTheNumberOfJobs runs two rounds of a job mix and
// checks that every key that grows with the jobs run has a TTL, and that
// the second round adds no key without one.
func TestNothingGrowsWithTheNumberOfJobs(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(c *config.Config) { c.WorkerPool.Workers = 8 })
	rdb := openNS(t, c)
	var surveys []keySurvey
	total := 0
	for round := 1; round <= 2; round++ {
		total += len(runMix(t, h))
		// Entries of ended jobs left in a queue are dropped by the workers.
		pollUntil(t, wait, "empty queues", func() bool {
			for _, k := range rdb.scanAll(t) {
				if c, _ := keyClassOf(strings.TrimPrefix(k, rdb.key(""))); c.name == "jobs:<name>" {
					return false
				}
			}
			return true
		})
		s := surveyKeys(t, h, rdb, nil)
		t.Logf("keys after round %d (%d jobs so far):\n%s", round, total, s)
		surveys = append(surveys, s)
	}
	for k := range surveys[1].noTTL {
		if !surveys[0].noTTL[k] {
			t.Errorf("key %s without a TTL appeared in the second round", k)
		}
	}
}

// TestRetryWaitingStatsOutliveTheirRetry: a failed job waiting for its
// retry keeps its stats at least until the retry runs.
func TestRetryWaitingStatsOutliveTheirRetry(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(c *config.Config) {
		c.Stats.ErrorTTL = config.Duration(time.Minute)
		c.Retry.BackoffBase, c.Retry.BackoffMax = farBackoff, farBackoff
	})
	rdb := openNS(t, c)
	st := h.Submit(t, "FLAKY", map[string]any{"succeed_on": 99}, nil)
	h.Wait(t, st.ID, wait, "a failed attempt", func(s *job.Stats) bool { return s.Status == job.Error })
	var retryAt int64
	pollUntil(t, wait, "an entry in the retry set", func() bool {
		s := rdb.zsetScores(t, "retry", st.ID)
		if len(s) == 1 {
			retryAt = s[0]
		}
		return retryAt != 0
	})
	if ttl, until := rdb.ttl(t, "job_stats:"+st.ID), retryAt-time.Now().Unix(); ttl != -1 && ttl < until {
		t.Fatalf("the stats expire in %ds, the retry runs in %ds", ttl, until)
	}
}
