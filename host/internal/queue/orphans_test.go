package queue_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/queue"
)

// An entry gocraft/work's fetch moved into the pool's in-progress list
// whose worker never got the reply (Redis shut down right after the
// script) is in no worker's hands: the sweep queues it again, once, and
// gives its concurrency slot back; a job a worker runs is left alone.
func TestSweepQueuesAgainAnEntryNoWorkerRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan string, 10)
	release := make(chan struct{})
	p := b.start(t, queue.Options{Concurrency: 2, OrphanAfter: 100 * time.Millisecond, SweepEvery: time.Hour,
		Handler: func(j queue.Job) error {
			started <- j.ID
			if j.ID == "held" {
				<-release
			}
			return nil
		}})
	defer close(release)
	// A job a worker runs for as long as the test lasts.
	b.push(t, entry{Name: "a", ID: "held", T: 1})
	p.Wake()
	if id := receive(t, "the held job", started); id != "held" {
		t.Fatalf("started %s", id)
	}
	// The pool that runs it (the wake-up may have restarted the pool: the
	// pool of no worker is listed meanwhile, and the restarted one again
	// with its first heartbeat, which may come after its first job).
	pool := ""
	waitFor(t, "a listed worker pool to have the held job in progress", func() bool {
		ids, err := redis.Strings(b.do(t, "SMEMBERS", b.keys.WorkerPools()), nil)
		if err != nil {
			t.Fatalf("worker pools %v, %v", ids, err)
		}
		for _, id := range ids {
			if b.int(t, "LLEN", b.keys.InProgress("a", id)) > 0 {
				pool = id
			}
		}
		return pool != ""
	})
	lock, share := b.int(t, "GET", b.keys.Lock("a")), b.int(t, "HGET", b.keys.LockInfo("a"), pool)
	held := b.int(t, "LLEN", b.keys.InProgress("a", pool))
	// The stranded fetch: the entry, the lock and the pool's share.
	raw, _ := json.Marshal(entry{Name: "a", ID: "stranded", T: 1, Args: map[string]any{}})
	b.do(t, "LPUSH", b.keys.InProgress("a", pool), raw)
	b.do(t, "INCR", b.keys.Lock("a"))
	b.do(t, "HINCRBY", b.keys.LockInfo("a"), pool, 1)

	p.Sweep() // a suspect, and a second sweep once OrphanAfter has passed
	if id := receive(t, "the stranded job, queued again", started); id != "stranded" {
		t.Fatalf("started %s, want the stranded job", id)
	}
	waitFor(t, "the stranded job's slot to be given back", func() bool {
		return b.int(t, "GET", b.keys.Lock("a")) == lock && b.int(t, "HGET", b.keys.LockInfo("a"), pool) == share
	})
	// The held job stays in its worker's hands through later sweeps.
	for range 3 {
		p.Sweep()
		time.Sleep(150 * time.Millisecond)
	}
	select {
	case id := <-started:
		t.Fatalf("%s started again", id)
	default:
	}
	if n := b.int(t, "LLEN", b.keys.InProgress("a", pool)); n != held || held != 1 {
		t.Fatalf("in-progress list holds %d entries, want the held job's alone (%d before)", n, held)
	}
}

// The sweep reads gocraft/work's pool ID from the pool itself.
func TestPoolIDOf(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wp := work.NewWorkerPool(struct{}{}, 1, b.keys.WorkNamespace(), b.redis)
	if id := queue.PoolIDOf(wp); len(id) != 24 {
		t.Fatalf("PoolIDOf = %q; want gocraft/work's 24-hex-digit ID", id)
	}
}
