package daemon_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// pickObserved lists the job IDs that the workers of every listed pool
// are observed running ({ns}:worker:<id>, as gocraft/work writes it and
// Harbor's dashboard reads it).
func pickObserved(t *testing.T, rdb *nsRedis) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, pool := range rdb.strings(t, "SMEMBERS", rdb.key("worker_pools")) {
		v := rdb.do(t, "HGET", rdb.key("worker_pools:"+pool), "worker_ids")
		ids, _ := v.([]byte)
		for _, w := range strings.Split(string(ids), ",") {
			if w == "" {
				continue
			}
			if id, ok := rdb.do(t, "HGET", rdb.key("worker:"+w), "job_id").([]byte); ok {
				seen[string(id)] = true
			}
		}
	}
	return seen
}

// pickStats is GET /api/v1/stats.
func pickStats(t *testing.T, h *hosttest.Host) []*job.WorkerPool {
	t.Helper()
	var stats job.PoolStats
	h.Do(t, http.MethodGet, "/api/v1/stats", "", nil).JSON(t, &stats)
	return stats.Pools
}

// While long jobs hold workers and a burst of short jobs passes (each
// submission rings the doorbell, and wake-ups start new worker pools
// around the held jobs), what Harbor's dashboard reads stays true: a
// listed pool's worker is observed running each held job, and :lock and
// :lock_info count them; once they end, the host lists one pool again,
// the one it started with, with every worker.
func TestPickWakeUpsAroundLongJobsKeepTheDashboardTrue(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, nil)
	rdb := openNS(t, c)
	pools := pickStats(t, h)
	if len(pools) != 1 {
		t.Fatalf("a fresh host lists %d pools, want 1", len(pools))
	}
	home, workers := pools[0].WorkerPoolID, pools[0].Concurrency
	var held []string
	for range 2 {
		held = append(held, h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 120}), nil).ID)
	}
	for _, id := range held {
		h.WaitStatus(t, id, job.Running, wait)
	}
	const burst = 60
	ids := make([]string, burst)
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < burst; i += 4 {
				ids[i] = h.Submit(t, "NOOP", nil, nil).ID
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		h.WaitStatus(t, id, job.Success, wait)
	}
	// gocraft/work writes a worker's observation within a second.
	pollUntil(t, wait, "workers of listed pools observed running both held jobs", func() bool {
		seen := pickObserved(t, rdb)
		return seen[held[0]] && seen[held[1]]
	})
	if n := rdb.int(t, "GET", rdb.key("jobs:DEMO:lock")); n != 2 {
		t.Fatalf("jobs:DEMO:lock = %d with 2 DEMO jobs running", n)
	}
	var shares int64
	for _, v := range rdb.strings(t, "HVALS", rdb.key("jobs:DEMO:lock_info")) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("jobs:DEMO:lock_info holds %q", v)
		}
		shares += n
	}
	if shares != 2 {
		t.Fatalf("jobs:DEMO:lock_info shares add up to %d with 2 DEMO jobs running", shares)
	}
	for _, id := range held {
		if r := h.Action(t, id, "stop"); r.Status != http.StatusNoContent {
			t.Fatalf("stop %s: %d %s", id, r.Status, r.Body)
		}
		h.WaitStatus(t, id, job.Stopped, wait)
	}
	pollUntil(t, wait, "one pool listed again, the first, with every worker", func() bool {
		p := pickStats(t, h)
		return len(p) == 1 && p[0].WorkerPoolID == home && p[0].Concurrency == workers
	})
	if n := rdb.int(t, "SCARD", rdb.key("worker_pools")); n != 1 {
		t.Fatalf("worker_pools lists %d pools once the host is idle", n)
	}
}
