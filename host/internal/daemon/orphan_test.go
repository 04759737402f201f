package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// A job whose fetch Redis applied but never answered (it shut down right
// after the script: the worker saw EOF) sits in the host's in-progress
// list with no worker on it. Once the host's Redis connection comes back
// it is queued again and runs. The state is made by hand, as Redis leaves
// it: the entry moved from the queue into the pool's in-progress list,
// its slot taken, the job Pending.
func TestAJobWhoseFetchAnswerWasLostStillRuns(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t) // its own: the test drops every pub/sub connection
	c := &hosttest.Cluster{Redis: srv, Namespace: srv.Namespace(t), Plugins: plugintest.Dir(t, "demo")}
	h := c.Start(t, nil)
	keys := store.NewKeys(c.Namespace)
	conn := srv.Pool(t).Get()
	defer conn.Close()
	do := func(cmd string, args ...any) any {
		t.Helper()
		v, err := conn.Do(cmd, args...)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return v
	}

	// A job waiting an hour holds its entry in the scheduled set.
	st := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), map[string]any{"kind": "Scheduled", "schedule_delay": 3600})
	entries, _ := redis.Strings(do("ZRANGE", keys.Scheduled(), 0, -1), nil)
	var ent string
	for _, e := range entries {
		if strings.Contains(e, st.ID) {
			ent = e
		}
	}
	if ent == "" {
		t.Fatalf("no scheduled entry of %s in %q", st.ID, entries)
	}
	pools, _ := redis.Strings(do("SMEMBERS", keys.WorkerPools()), nil)
	if len(pools) != 1 {
		t.Fatalf("worker pools %q, want the host's one", pools)
	}
	do("ZREM", keys.Scheduled(), ent)
	do("LPUSH", keys.InProgress("DEMO", pools[0]), ent)
	do("INCR", keys.Lock("DEMO"))
	do("HINCRBY", keys.LockInfo("DEMO"), pools[0], 1)
	do("HSET", keys.Stats(st.ID), "status", string(job.Pending))

	// Redis drops the host's connections, as at a restart.
	do("CLIENT", "KILL", "TYPE", "pubsub")
	h.WaitStatus(t, st.ID, job.Success, 30*time.Second)
	if !strings.Contains(h.Log.String(), "it is queued again") {
		t.Errorf("the host did not say it queued the job again:\n%s", h.Log.String())
	}
	if n, _ := redis.Int(do("GET", keys.Lock("DEMO")), nil); n != 0 {
		t.Errorf("DEMO lock %d after the run, want 0", n)
	}
}
