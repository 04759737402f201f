package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// relHooks is a status hook receiver: it answers 200 and keeps the
// statuses each job reported, in order.
type relHooks struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]string
}

func relNewHooks(t *testing.T) *relHooks {
	t.Helper()
	r := &relHooks{got: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			JobID   string `json:"job_id"`
			Status  string `json:"status"`
			CheckIn string `json:"check_in"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if body.CheckIn == "" {
			r.mu.Lock()
			r.got[body.JobID] = append(r.got[body.JobID], body.Status)
			r.mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// statuses are the statuses (not check-ins) job id reported.
func (r *relHooks) statuses(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got[id]...)
}

// relSubmitHooked submits a job with a status hook.
func relSubmitHooked(t *testing.T, h *hosttest.Host, name string, params map[string]any, hook string) *job.Stats {
	t.Helper()
	req := hosttest.Request(name, params, nil)
	req["job"].(map[string]any)["status_hook"] = hook
	r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, req)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit %s: %d %s", name, r.Status, r.Body)
	}
	return r.Stats(t)
}

// relPersistentCluster is a cluster on a Redis of the test's own that
// writes every change to its append-only file before answering, so that
// it can be killed and restarted without losing what it acknowledged.
func relPersistentCluster(t *testing.T) *hosttest.Cluster {
	t.Helper()
	srv := redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
	return &hosttest.Cluster{Redis: srv, Namespace: srv.Namespace(t), Plugins: plugintest.Dir(t, "demo", "fixture")}
}

// relRestartRedis restarts the cluster's Redis and waits until it has
// loaded its data (it answers LOADING meanwhile).
func relRestartRedis(t *testing.T, c *hosttest.Cluster) {
	t.Helper()
	c.Redis.Restart(t)
	pool := c.Redis.Pool(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn := pool.Get()
		_, err := conn.Do("EXISTS", "x")
		conn.Close()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis did not load its data within 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relWaitLog waits until every id appears in a line of one of the hosts'
// logs that holds what.
func relWaitLog(t *testing.T, timeout time.Duration, what string, ids []string, hosts ...*hosttest.Host) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		var all strings.Builder
		for _, h := range hosts {
			all.WriteString(h.Log.String())
		}
		lines := strings.Split(all.String(), "\n")
		for _, id := range ids {
			found := false
			for _, l := range lines {
				if strings.Contains(l, what) && strings.Contains(l, id) {
					found = true
					break
				}
			}
			if !found {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs have no log line %q within %s", missing, len(ids), what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Jobs that end while Redis is down (killed, then restarted from its
// append-only file) reach their final status, in the revision they ran
// in, and their final hook, once Redis is back: the hosts hold each
// outcome and try again until Redis answers.
func TestOutageJobsThatEndWhileRedisIsDownReachTheirFinalStatus(t *testing.T) {
	t.Parallel()
	c := relPersistentCluster(t)
	hooks := relNewHooks(t)
	fast := func(cfg *config.Config) {
		cfg.Hooks.BackoffBase = config.Duration(100 * time.Millisecond)
		cfg.Hooks.BackoffMax = config.Duration(time.Second)
	}
	a := c.Start(t, fast)
	b := c.Start(t, fast)

	const jobs = 8
	var ids []string
	for i := 0; i < jobs; i++ {
		h := []*hosttest.Host{a, b}[i%2]
		ids = append(ids, relSubmitHooked(t, h, "CLOCK", map[string]any{"hold_seconds": 6}, hooks.srv.URL).ID)
	}
	started := map[string]*job.Stats{}
	for _, id := range ids {
		started[id] = a.Wait(t, id, wait, "a start", func(s *job.Stats) bool {
			return s.Status == job.Running && strings.HasPrefix(s.CheckIn, "started_ms=")
		})
	}
	// The runs hold long enough that none has ended by now, even on a
	// loaded machine where seeing all eight start takes seconds.
	c.Redis.Kill()
	// Every job ends during the outage, and its host fails to record it.
	relWaitLog(t, 30*time.Second, "cannot record the end of the attempt", ids, a, b)
	relRestartRedis(t, c)

	for _, id := range ids {
		st := a.WaitStatus(t, id, job.Success, 30*time.Second)
		if st.Revision != started[id].Revision {
			t.Fatalf("job %s ended in revision %d, want the one it ran in, %d (it ran again)", id, st.Revision, started[id].Revision)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			got := hooks.statuses(id)
			if len(got) > 0 && got[len(got)-1] == string(job.Success) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s: hooks %q, want a last Success", id, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A running job that no host runs any more is recovered within about a
// lease, not after max_job_duration: here its host shut down while Redis
// was down, so that it could not queue the job again, and the entry that
// gocraft/work kept for it is gone (as gocraft/work drops it once the
// handler returns). Nothing but the job's lease is left to tell that it
// lost its runner.
func TestOutageRunningJobWithoutARunnerIsRecoveredWhenItsLeaseExpires(t *testing.T) {
	t.Parallel()
	c := relPersistentCluster(t)
	short := func(cfg *config.Config) {
		cfg.Reaper.Interval = config.Duration(500 * time.Millisecond)
		cfg.Reaper.DeadAfter = config.Duration(6 * time.Second)
	}
	a := c.Start(t, short)
	id := a.Submit(t, "CLOCK", map[string]any{"hold_seconds": 120}, nil).ID
	first := a.Wait(t, id, wait, "a start", func(s *job.Stats) bool { return strings.HasPrefix(s.CheckIn, "started_ms=") })

	c.Redis.Kill()
	a.Stop()
	relRestartRedis(t, c)

	// What gocraft/work leaves once its handler returned: no entry of the
	// job anywhere, and no pool to reap.
	keys := store.NewKeys(c.Namespace)
	pool := c.Redis.Pool(t)
	conn := pool.Get()
	defer conn.Close()
	pools, err := redis.Strings(conn.Do("SMEMBERS", keys.WorkerPools()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if _, err := conn.Do("DEL", keys.InProgress("CLOCK", p), keys.Heartbeat(p)); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Do("SREM", keys.WorkerPools(), p); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := redis.Int(conn.Do("LLEN", keys.Jobs("CLOCK"))); err != nil || n != 0 {
		t.Fatalf("the CLOCK queue holds %d entries (%v), want none", n, err)
	}
	st, err := store.New(pool, store.Options{Namespace: c.Namespace}).Get(context.Background(), id)
	if err != nil || st.Status != job.Running || st.Revision != first.Revision {
		t.Fatalf("after the host went: %+v (%v), want it still Running in revision %d", st, err, first.Revision)
	}

	b := c.Start(t, short)
	again := b.Wait(t, id, 40*time.Second, "a run in a new revision", func(s *job.Stats) bool {
		return s.Status == job.Running && s.Revision > first.Revision && strings.HasPrefix(s.CheckIn, "started_ms=")
	})
	t.Logf("recovered in revision %d", again.Revision)
	if r := b.Action(t, id, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	b.WaitStatus(t, id, job.Stopped, wait)
}
