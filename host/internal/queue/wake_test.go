package queue_test

import (
	"context"
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
