package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/queue"
)

// fetchClock records when gocraft/work's workers last fetched: the fetch
// script is the EVALSHA (or EVAL) with 6 keys per job type, the only one
// (its requeuers' script has 2 keys plus one per type).
type fetchClock struct {
	keys string // 6 × the job types
	last atomic.Int64
	n    atomic.Int64
}

func (f *fetchClock) since() time.Duration { return time.Since(time.Unix(0, f.last.Load())) }

type fetchConn struct {
	redis.Conn
	f *fetchClock
}

func (c fetchConn) see(cmd string, args []any) {
	if (cmd == "EVALSHA" || cmd == "EVAL") && len(args) > 1 && fmt.Sprint(args[1]) == c.f.keys {
		c.f.last.Store(time.Now().UnixNano())
		c.f.n.Add(1)
	}
}

func (c fetchConn) Do(cmd string, args ...any) (any, error) {
	c.see(cmd, args)
	return c.Conn.Do(cmd, args...)
}

func (c fetchConn) Send(cmd string, args ...any) error {
	c.see(cmd, args)
	return c.Conn.Send(cmd, args...)
}

// DoContext and ReceiveContext pass through: store's calls need them.
func (c fetchConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	c.see(cmd, args)
	return redis.DoContext(c.Conn, ctx, cmd, args...)
}

func (c fetchConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

// fetchPool is a pool to the bundle's server whose connections feed f.
func (b *bundle) fetchPool(t *testing.T, f *fetchClock) *redis.Pool {
	p := &redis.Pool{MaxIdle: 16, Dial: func() (redis.Conn, error) {
		c, err := redis.Dial("tcp", b.srv.Addr())
		return fetchConn{c, f}, err
	}}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// A wake-up after a burst of submissions, each with its wake-up as the
// doorbell rings them, still wakes an idle worker, also while workers
// are held by long jobs taken during the burst. The job queued after the
// burst must start before any idle worker's own next fetch: the workers
// have been quiet for 1.2 s, so each sleeps in gocraft/work's 5 s
// back-off and none fetches on its own within the next 3.8 s. (Before
// generations, a wake-up was a gocraft/work Drain, one at a time; the
// first one of the burst waited on the held worker for as long as its job
// ran, every later wake-up was folded into it, and the job waited for
// gocraft/work's own polling.)
func TestWakeAfterBurst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		held int // of 4 workers
	}{
		{"NoWorkerHeld", 0},
		{"OneWorkerHeld", 1},
		{"HalfTheWorkersHeld", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			f := &fetchClock{keys: "6"}
			g := newGate(t)
			const burst = 400
			started := make(chan string, burst+tc.held+10)
			p := b.start(t, queue.Options{Redis: b.fetchPool(t, f), Concurrency: 4, Handler: func(j queue.Job) error {
				started <- j.ID
				if strings.HasPrefix(j.ID, "hold") {
					g.wait()
				}
				return nil
			}})
			for i := range tc.held {
				b.push(t, entry{Name: "a", ID: fmt.Sprintf("hold%d", i), T: 1})
				p.Wake()
			}
			var wg sync.WaitGroup
			for s := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range burst / 4 {
						b.push(t, entry{Name: "a", ID: fmt.Sprintf("burst%d-%d", s, i), T: 1})
						p.Wake()
					}
				}()
			}
			wg.Wait()
			seen := map[string]bool{}
			for len(seen) < burst+tc.held {
				seen[receive(t, "a job of the burst", started)] = true
			}
			waitFor(t, "the workers to be quiet for 1.2 s", func() bool { return f.since() > 1200*time.Millisecond })
			before := f.n.Load()
			b.push(t, entry{Name: "a", ID: "after", T: 2})
			p.Wake()
			select {
			case id := <-started:
				if id != "after" {
					t.Fatalf("started %s, want the job queued after the burst", id)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("the job queued after the burst did not start within 3 s, before any idle worker's own next fetch "+
					"(%d fetches since the wake-up): the wake-up woke no worker", f.n.Load()-before)
			}
			g.open()
			waitFor(t, "the jobs to settle", func() bool { return b.settled(t, "a") })
		})
	}
}

// Under steady load no wake-up is made (a worker that ends a job fetches
// at once), so jobs that pile up in the queue wait for the idle workers'
// own back-off, up to 5 s, unless a start that finds a backlog says so
// (Behind). Here one worker chains jobs without end: each queues the
// next at the head of the queue, so it always takes that one, and reports
// the queue's length as the host does when a job starts. Once the other
// workers have been quiet for 1.2 s (gocraft/work's 5 s back-off step),
// jobs queued behind the chain must start before any of them would fetch
// on its own.
func TestBehindWakesIdleWorkersUnderSteadyLoad(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := &fetchClock{keys: "6"}
	const backlog = 8
	var chained atomic.Int64
	var p *queue.Pool
	ready := make(chan struct{})
	started := make(chan string, backlog)
	stop := make(chan struct{})
	p = b.start(t, queue.Options{Redis: b.fetchPool(t, f), Concurrency: 4, Handler: func(j queue.Job) error {
		if !strings.HasPrefix(j.ID, "chain") {
			started <- j.ID
			return nil
		}
		<-ready
		n := chained.Add(1)
		select {
		case <-stop:
			return nil
		case <-time.After(2 * time.Millisecond):
		}
		if n >= 20000 {
			return nil // a bound on the chain, far past the test's end
		}
		raw, _ := json.Marshal(entry{Name: "a", ID: fmt.Sprintf("chain%d", n), T: 1, Args: map[string]any{}})
		b.do(t, "RPUSH", b.keys.Jobs("a"), raw)
		p.Behind(int(b.int(t, "LLEN", b.keys.Jobs("a"))))
		return nil
	}})
	t.Cleanup(func() { close(stop) })
	b.push(t, entry{Name: "a", ID: "chain0", T: 1})
	p.Wake()
	close(ready)
	// The chain's worker fetches once a job; the others' fetches are the
	// rest.
	idle := func() int64 { return f.n.Load() - chained.Load() }
	last, since := idle(), time.Now()
	waitFor(t, "the idle workers to be quiet for 1.2 s", func() bool {
		// The two counts move one after the other: a fetch that the
		// chain's count has not caught up with yet is not news.
		if n := idle(); n > last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 1200*time.Millisecond
	})
	for i := range backlog {
		b.push(t, entry{Name: "a", ID: fmt.Sprintf("behind%d", i), T: 2})
	}
	p.Wake() // the doorbell's: steady load makes it wait
	deadline := time.After(3 * time.Second)
	for i := range backlog {
		select {
		case <-started:
		case <-deadline:
			t.Fatalf("%d of %d jobs queued behind a steady chain started within 3 s, before any idle worker's own next fetch: "+
				"the backlog woke no worker", i, backlog)
		}
	}
}
