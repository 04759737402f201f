package queue_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/queue"
)

// Wake-ups replace the current gocraft/work pool by a new one; the host
// must still run at most Concurrency jobs at once, each job once, and end
// with one pool listed and nothing held in :lock or :lock_info.
func TestWakeUpsKeepTheWorkerCount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	const workers, jobs = 3, 300
	var active, peak atomic.Int64
	var mu sync.Mutex
	runs := map[string]int{}
	p := b.start(t, queue.Options{Concurrency: workers, Handler: func(j queue.Job) error {
		n := active.Add(1)
		for m := peak.Load(); n > m && !peak.CompareAndSwap(m, n); m = peak.Load() {
		}
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		if j.ID == "hold" {
			g.wait()
		} else {
			time.Sleep(time.Duration(len(j.ID)%3) * time.Millisecond)
		}
		active.Add(-1)
		return nil
	}})
	home := b.heartbeats(t, time.Now())[0].WorkerPoolID
	b.push(t, entry{Name: "a", ID: "hold", T: 1})
	p.Wake()
	waitFor(t, "the held job to start", func() bool { mu.Lock(); defer mu.Unlock(); return runs["hold"] == 1 })
	// Pushes at uneven gaps (some wake-ups find a worker about to fetch,
	// some start a new pool, some find every worker busy), from two
	// goroutines.
	var wg sync.WaitGroup
	for s := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs / 2 {
				b.push(t, entry{Name: "a", ID: fmt.Sprintf("j%d-%d", s, i), T: 1})
				p.Wake()
				time.Sleep(time.Duration(i%7) * 3 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every job to run", func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == jobs+1 })
	g.open()
	waitFor(t, "the jobs to settle", func() bool { return b.settled(t, "a") })
	if n := peak.Load(); n > workers {
		t.Fatalf("%d jobs ran at once on a pool of %d workers", n, workers)
	}
	mu.Lock()
	for id, n := range runs {
		if n != 1 {
			t.Fatalf("job %s ran %d times", id, n)
		}
	}
	mu.Unlock()
	// The pools that ran the held job and the others are stopped once
	// idle: one is left, with every worker, the one the host started with
	// (an idle host keeps its pool ID: nothing grows with the wake-ups).
	waitFor(t, "one pool listed, with every worker", func() bool {
		hb := b.heartbeats(t, time.Now())
		return len(hb) == 1 && hb[0].Concurrency == workers
	})
	if hb := b.heartbeats(t, time.Now()); hb[0].WorkerPoolID != home {
		t.Fatalf("the pool left is %s, want %s, the first", hb[0].WorkerPoolID, home)
	}
	if n := b.int(t, "SCARD", b.keys.WorkerPools()); n != 1 {
		t.Fatalf("worker_pools lists %d pools once idle, want 1", n)
	}
	shares, err := redis.Int64Map(b.do(t, "HGETALL", b.keys.LockInfo("a")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for pool, n := range shares {
		if n != 0 {
			t.Fatalf(":lock_info gives pool %s %d running jobs with none running (%v)", pool, n, shares)
		}
	}
}

// While a long job runs and wake-ups replace the pool around it, Harbor's
// dashboard still sees it: a listed pool names a worker whose observation
// is that job, and :lock and :lock_info count it once.
func TestHeldJobStaysObservable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	started := make(chan string, 100)
	p := b.start(t, queue.Options{Concurrency: 2, Types: []queue.Type{{Name: "a", MaxConcurrency: 5}}, Handler: func(j queue.Job) error {
		started <- j.ID
		if j.ID == "hold" {
			g.wait()
		}
		return nil
	}})
	b.push(t, entry{Name: "a", ID: "hold", T: 1})
	p.Wake()
	receive(t, "the held job", started)
	for i := range 5 {
		// Past the workers' first back-off step, so that each wake-up
		// starts a new pool.
		time.Sleep(30 * time.Millisecond)
		b.push(t, entry{Name: "a", ID: fmt.Sprintf("s%d", i), T: 1})
		p.Wake()
		receive(t, "a short job", started)
	}
	waitFor(t, "the short jobs to settle", func() bool { return b.int(t, "LLEN", b.keys.Jobs("a")) == 0 && b.int(t, "GET", b.keys.Lock("a")) == 1 })
	observed := func() bool {
		for _, h := range b.heartbeats(t, time.Now()) {
			ids, err := redis.String(b.do(t, "HGET", b.keys.Heartbeat(h.WorkerPoolID), "worker_ids"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range strings.Split(ids, ",") {
				v := b.do(t, "HGET", b.keys.WorkNamespace()+":worker:"+w, "job_id")
				if s, _ := redis.String(v, nil); s == "hold" {
					return true
				}
			}
		}
		return false
	}
	// gocraft/work writes an observation within a second of the change.
	waitFor(t, "a listed pool's worker observed running the held job", observed)
	shares, err := redis.Int64Map(b.do(t, "HGETALL", b.keys.LockInfo("a")), nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range shares {
		sum += n
	}
	if sum != 1 {
		t.Fatalf(":lock_info counts %d running jobs (%v), want 1", sum, shares)
	}
	g.open()
	waitFor(t, "the held job to settle", func() bool { return b.settled(t, "a") })
}
