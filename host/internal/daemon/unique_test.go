package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// uniqMeta is the metadata of a unique Generic job, or of a unique
// Scheduled one when delay > 0.
func uniqMeta(delay int) map[string]any {
	if delay > 0 {
		return map[string]any{"kind": "Scheduled", "schedule_delay": delay, "unique": true}
	}
	return map[string]any{"kind": "Generic", "unique": true}
}

// uniqPost submits a job and returns the answer, whatever it is.
func uniqPost(t *testing.T, h *hosttest.Host, name string, params, meta map[string]any) *hosttest.Response {
	t.Helper()
	return h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request(name, params, meta))
}

// uniqRefused checks that r is Harbor's answer to a duplicate unique job
// (409, code 10012) and that it names the job holding the claim.
func uniqRefused(t *testing.T, r *hosttest.Response, holder, what string) {
	t.Helper()
	if r.Status != http.StatusConflict {
		t.Fatalf("%s: a duplicate got %d %s, want 409 naming %s", what, r.Status, r.Body, holder)
	}
	e := errorOf(t, r, http.StatusConflict)
	if e.Code != 10012 || e.Message != "conflict" || !strings.Contains(e.Details, holder) {
		t.Fatalf("%s: 409 body %s, want code 10012, message conflict, details naming %s", what, r.Body, holder)
	}
}

// uniqAccepted checks that r accepted a job and returns it.
func uniqAccepted(t *testing.T, r *hosttest.Response, what string) *job.Stats {
	t.Helper()
	if r.Status != http.StatusAccepted {
		t.Fatalf("%s: %d %s, want 202", what, r.Status, r.Body)
	}
	return r.Stats(t)
}

// uniqStop stops a job and expects 204.
func uniqStop(t *testing.T, h *hosttest.Host, id string) {
	t.Helper()
	if r := h.Action(t, id, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop %s: %d %s", id, r.Status, r.Body)
	}
}

// uniqClaimKey is the claim of a unique job: gocraft/work's unique key.
func uniqClaimKey(t *testing.T, c *hosttest.Cluster, name string, params map[string]any) string {
	t.Helper()
	k, err := store.NewKeys(c.Namespace).Unique(name, params)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A unique job is refused while an identical one is Pending, Scheduled,
// Running or waiting for its retry, on any host; the 409 names the job
// that holds the claim, and the claim goes with the first job's final
// status (Success, Stopped, final Error).
func TestUniqueDuplicateIsRefusedUntilTheFirstEnds(t *testing.T) {
	t.Parallel()
	t.Run("PendingThenSuccess", func(t *testing.T) {
		t.Parallel()
		c := hosttest.NewCluster(t)
		h := c.Start(t, nil)
		other := c.Start(t, nil)
		rdb := openNS(t, c)
		// A paused queue keeps the job Pending (gocraft/work's pause, as an
		// operator sets it).
		paused := rdb.key("jobs:DEMO:paused")
		rdb.do(t, "SET", paused, "1")
		params := demo(map[string]any{"hold_seconds": 0})
		first := h.Submit(t, "DEMO", params, uniqMeta(0))
		uniqRefused(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), first.ID, "Pending, from another host")
		// A Scheduled submission of the same job is the same job.
		uniqRefused(t, uniqPost(t, h, "DEMO", params, uniqMeta(60)), first.ID, "Pending, submitted Scheduled")
		if got := h.Get(t, first.ID); got.Status != job.Pending {
			t.Fatalf("the first job is %s, want Pending", got.Status)
		}
		rdb.do(t, "DEL", paused)
		h.WaitStatus(t, first.ID, job.Success, wait)
		again := uniqAccepted(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), "after Success")
		other.WaitStatus(t, again.ID, job.Success, wait)
	})
	t.Run("ScheduledThenStopped", func(t *testing.T) {
		t.Parallel()
		c := hosttest.NewCluster(t)
		h := c.Start(t, nil)
		first := h.Submit(t, "DEMO", demo(nil), uniqMeta(60))
		uniqRefused(t, uniqPost(t, h, "DEMO", demo(nil), uniqMeta(60)), first.ID, "Scheduled")
		uniqRefused(t, uniqPost(t, h, "DEMO", demo(nil), uniqMeta(0)), first.ID, "Scheduled, submitted Generic")
		// Other parameters, or not unique: another job.
		h.Submit(t, "DEMO", demo(map[string]any{"log_lines": 1}), uniqMeta(60))
		h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60})
		uniqStop(t, h, first.ID)
		uniqAccepted(t, uniqPost(t, h, "DEMO", demo(nil), uniqMeta(60)), "after Stopped")
	})
	t.Run("RunningThenStopped", func(t *testing.T) {
		t.Parallel()
		c := hosttest.NewCluster(t)
		h := c.Start(t, nil)
		other := c.Start(t, nil)
		params := demo(map[string]any{"hold_seconds": 30})
		first := h.Submit(t, "DEMO", params, uniqMeta(0))
		running := h.WaitCheckin(t, first.ID, "progress data: %60", wait)
		if running.Status != job.Running {
			t.Fatalf("the first job is %s, want Running", running.Status)
		}
		uniqRefused(t, uniqPost(t, h, "DEMO", params, uniqMeta(0)), first.ID, "Running")
		uniqRefused(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), first.ID, "Running, from another host")
		uniqStop(t, other, first.ID)
		h.WaitStatus(t, first.ID, job.Stopped, wait)
		again := uniqAccepted(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), "after Stopped")
		uniqStop(t, other, again.ID)
	})
	t.Run("WaitingForRetryThenFinalError", func(t *testing.T) {
		t.Parallel()
		c := hosttest.NewCluster(t)
		// Waits long enough to submit during each, short enough for the
		// test: DEMO fails three times before it ends in Error.
		slow := func(cfg *config.Config) {
			cfg.Retry.BackoffBase = config.Duration(3 * time.Second)
			cfg.Retry.BackoffMax = config.Duration(3 * time.Second)
		}
		h := c.Start(t, slow)
		other := c.Start(t, slow)
		rdb := openNS(t, c)
		params := demo(map[string]any{"fail": true})
		first := h.Submit(t, "DEMO", params, uniqMeta(0))
		// After each of the first two failed runs, the job waits in the
		// retry set: a duplicate is refused then, and in the second wait
		// the claim has been held through a retried run.
		var lastRev int64
		for wave := 1; wave <= 2; wave++ {
			var waiting *job.Stats
			pollUntil(t, wait, fmt.Sprintf("retry wait %d", wave), func() bool {
				waiting = h.Get(t, first.ID)
				return waiting.Status == job.Error && waiting.Revision > lastRev && len(rdb.zsetScores(t, "retry", first.ID)) == 1
			})
			lastRev = waiting.Revision
			uniqRefused(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), first.ID, fmt.Sprintf("waiting for retry %d", wave))
		}
		// The third failure is final: the claim is free again.
		pollUntil(t, 30*time.Second, "the final Error", func() bool {
			st := h.Get(t, first.ID)
			return st.Status == job.Error && st.Revision > lastRev && len(rdb.zsetScores(t, "retry", first.ID)) == 0
		})
		if got := rdb.int(t, "EXISTS", uniqClaimKey(t, c, "DEMO", params)); got != 0 {
			t.Fatal("the claim outlived the final Error")
		}
		second := uniqAccepted(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), "after the final Error")
		// The retry action on the first is now a duplicate of the second.
		uniqRefused(t, h.Action(t, first.ID, "retry"), second.ID, "retry action while an identical job lives")
		if got := h.Get(t, first.ID); got.Status != job.Error {
			t.Fatalf("a refused retry changed the job: %s", got.Status)
		}
		uniqStop(t, other, second.ID)
		h.WaitStatus(t, second.ID, job.Stopped, wait)
		// Once the second has ended, the first may be retried, and then
		// holds the claim again.
		if r := h.Action(t, first.ID, "retry"); r.Status != http.StatusNoContent {
			t.Fatalf("retry after the duplicate ended: %d %s", r.Status, r.Body)
		}
		uniqRefused(t, uniqPost(t, other, "DEMO", params, uniqMeta(0)), first.ID, "after the retry action")
		uniqStop(t, h, first.ID)
	})
}

// uniqResult is one answer of a concurrent submission.
type uniqResult struct {
	status int
	body   []byte
	err    error
}

// uniqPostRaw submits body to url without the testing.T (it runs off the
// test goroutine).
func uniqPostRaw(client *http.Client, url string, body []byte) uniqResult {
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/jobs", bytes.NewReader(body))
	if err != nil {
		return uniqResult{err: err}
	}
	req.Header.Set("Authorization", hosttest.Auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return uniqResult{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return uniqResult{status: resp.StatusCode, body: raw, err: err}
}

// Two hosts that get the same unique job at the same instant accept it
// exactly once; every other answer is the 409 naming the accepted one.
func TestUniqueTwoHostsSubmittingAtOnceAcceptOne(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	hosts := []*hosttest.Host{c.Start(t, nil), c.Start(t, nil)}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	const rounds, perHost = 5, 8
	for round := 0; round < rounds; round++ {
		params := demo(map[string]any{"hold_seconds": 30, "log_lines": round})
		body, err := json.Marshal(hosttest.Request("DEMO", params, uniqMeta(0)))
		if err != nil {
			t.Fatal(err)
		}
		results := make([]uniqResult, len(hosts)*perHost)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				results[i] = uniqPostRaw(client, hosts[i%len(hosts)].URL, body)
			}(i)
		}
		close(start)
		wg.Wait()
		var accepted []string
		var refused []uniqResult
		for _, r := range results {
			switch {
			case r.err != nil:
				t.Fatalf("round %d: %v", round, r.err)
			case r.status == http.StatusAccepted:
				var env job.Envelope
				if err := json.Unmarshal(r.body, &env); err != nil || env.Job == nil {
					t.Fatalf("round %d: 202 body %s", round, r.body)
				}
				accepted = append(accepted, env.Job.ID)
			default:
				refused = append(refused, r)
			}
		}
		if len(accepted) != 1 {
			t.Fatalf("round %d: %d of %d submissions accepted (%v), want exactly one", round, len(accepted), len(results), accepted)
		}
		for _, r := range refused {
			uniqRefused(t, &hosttest.Response{Status: r.status, Body: r.body}, accepted[0], fmt.Sprintf("round %d", round))
		}
		uniqStop(t, hosts[0], accepted[0])
	}
}

// A host killed with SIGKILL while it runs a unique job leaves the claim
// with the job, not behind it: until the reaper of another host recovers
// the job a duplicate is refused, the recovered run holds the claim, and
// when it ends an identical submission is accepted.
func TestUniqueClaimOfAKilledHostGoesWithTheRecoveredJob(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := c.StartProcess(t, "")
	params := demo(map[string]any{"hold_seconds": 4})
	body, err := json.Marshal(hosttest.Request("DEMO", params, uniqMeta(0)))
	if err != nil {
		t.Fatal(err)
	}
	sub := uniqPostRaw(http.DefaultClient, a.URL, body)
	if sub.err != nil || sub.status != http.StatusAccepted {
		t.Fatalf("submit to the process: %d %s %v", sub.status, sub.body, sub.err)
	}
	var env job.Envelope
	if err := json.Unmarshal(sub.body, &env); err != nil || env.Job == nil {
		t.Fatalf("submit answer %s", sub.body)
	}
	id := env.Job.ID
	// B starts once A runs the job, so that A is the one that takes it.
	b := c.Start(t, func(cfg *config.Config) {
		cfg.Reaper.Interval = config.Duration(500 * time.Millisecond)
		cfg.Reaper.DeadAfter = config.Duration(6 * time.Second)
	})
	first := b.WaitCheckin(t, id, "progress data: %60", wait)
	if err := a.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.Exited()
	rdb := openNS(t, c)
	claim := uniqClaimKey(t, c, "DEMO", params)
	if ttl := rdb.int(t, "TTL", claim); ttl <= 0 {
		t.Fatalf("the claim of the killed host's job has TTL %d, want a bounded one", ttl)
	}
	uniqRefused(t, uniqPost(t, b, "DEMO", params, uniqMeta(0)), id, "the host that ran it is dead")
	recovered := b.Wait(t, id, 40*time.Second, "a run in a new revision", func(s *job.Stats) bool {
		return s.Status == job.Running && s.Revision > first.Revision
	})
	uniqRefused(t, uniqPost(t, b, "DEMO", params, uniqMeta(0)), id, "the recovered run")
	done := b.WaitStatus(t, id, job.Success, wait)
	if done.Revision != recovered.Revision {
		t.Fatalf("the job ended in revision %d, want the recovered run's %d", done.Revision, recovered.Revision)
	}
	if got := rdb.int(t, "EXISTS", claim); got != 0 {
		t.Fatal("the claim outlived the recovered job")
	}
	again := uniqAccepted(t, uniqPost(t, b, "DEMO", params, uniqMeta(0)), "after the recovered job ended")
	b.WaitStatus(t, again.ID, job.Success, wait)
}

// uniqRun is when one execution's Run started, as the plugin saw it.
type uniqRun struct {
	id      string
	started int64 // unix ms
}

// The executions of a periodic policy submitted unique never run at once,
// across two hosts: a fire time whose predecessor still runs is skipped,
// and its stats say so.
func TestUniquePeriodicExecutionsNeverOverlap(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	hosts := []*hosttest.Host{c.Start(t, nil), c.Start(t, nil)}
	const holdMs = 2500
	params := map[string]any{"hold_seconds": float64(holdMs) / 1000}
	policy := hosts[0].Submit(t, "CLOCK", params, map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *", "unique": true})
	if !policy.Unique {
		t.Fatalf("the policy was stored without unique: %+v", policy)
	}
	// Sample for several intervals: never two Running at once.
	deadline := time.Now().Add(8 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 2000; i++ {
		var running []string
		for _, ex := range executions(t, hosts[i%2], policy.ID) {
			if ex.Status == job.Running {
				running = append(running, ex.ID)
			}
		}
		if len(running) > 1 {
			t.Fatalf("executions %v run at once", running)
		}
		time.Sleep(50 * time.Millisecond)
	}
	uniqStop(t, hosts[1], policy.ID)
	var runs []uniqRun
	skipped := 0
	for _, ex := range executions(t, hosts[0], policy.ID) {
		if ms, ok := strings.CutPrefix(ex.CheckIn, "started_ms="); ok {
			n, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				t.Fatalf("execution %s checked in %q", ex.ID, ex.CheckIn)
			}
			runs = append(runs, uniqRun{ex.ID, n})
			continue
		}
		if ex.Status == job.Stopped && strings.Contains(ex.CheckIn, "skipped") {
			if !ex.Unique || !strings.Contains(ex.CheckIn, policy.ID+"@") {
				t.Errorf("skipped execution %s: unique %v, check-in %q; want unique, naming the execution that ran", ex.ID, ex.Unique, ex.CheckIn)
			}
			skipped++
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].started < runs[j].started })
	for i := 1; i < len(runs); i++ {
		if runs[i].started < runs[i-1].started+holdMs {
			t.Errorf("execution %s started %d ms after %s, which holds %d ms", runs[i].id, runs[i].started-runs[i-1].started, runs[i-1].id, holdMs)
		}
	}
	if len(runs) < 2 || skipped < 2 {
		t.Fatalf("%d executions ran and %d were skipped in 8s; want at least 2 of each", len(runs), skipped)
	}
}
