package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/store"
)

type rawContext struct{}

// rawNS is the gocraft/work namespace of a raw measurement, braced like
// Berth's so that keys have the same shape and length.
func rawNS(name string) string { return store.NewKeys("bench-raw-" + name).WorkNamespace() }

// newRawPool returns a gocraft/work pool (not started) on the bench's
// Redis with one job type, the way Berth's queue registers its types but
// with the handler in process.
func (b *bench) newRawPool(ns, name string, handler func(*work.Job) error) *work.WorkerPool {
	wp := work.NewWorkerPool(rawContext{}, uint(b.opts.workers), ns, b.subject)
	wp.JobWithOptions(name, work.JobOptions{MaxFails: 1, SkipDead: true}, handler)
	return wp
}

// startTimes records when handlers (raw) or plugin runs (Berth) started,
// by job ID.
type startTimes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newStartTimes() *startTimes { return &startTimes{m: map[string]time.Time{}} }

func (s *startTimes) set(id string, t time.Time) {
	s.mu.Lock()
	s.m[id] = t
	s.mu.Unlock()
}

func (s *startTimes) get(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	return t, ok
}

// waitDrained waits until the gocraft/work queue name of keys is empty
// and no job of it is in flight: gocraft/work's lock counter (spelled
// here as gocraft/work v0.5.1 spells it) goes up when a worker takes a job
// and down after the handler returned, so a Berth job's final status is
// written when it reaches 0. Two commands per poll, on the counted pool.
func (b *bench) waitDrained(ctx context.Context, keys store.Keys, name string, every time.Duration) error {
	for {
		c := b.pool.Get()
		_ = c.Send("LLEN", keys.Jobs(name))
		_ = c.Send("GET", keys.Jobs(name)+":lock")
		_ = c.Flush()
		left, err1 := redis.Int(c.Receive())
		inflight, err2 := redis.Int(c.Receive())
		c.Close()
		if err2 == redis.ErrNil {
			err2 = nil
		}
		if err1 != nil || err2 != nil {
			return fmt.Errorf("poll the queue: %v %v", err1, err2)
		}
		if left == 0 && inflight <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d queued and %d running when the part's bound came: %w", left, inflight, ctx.Err())
		case <-time.After(every):
		}
	}
}

// paced calls fn(i) for i in [0, total) at rate per second from senders
// goroutines: call i is due at start + i/rate (an open loop, so a slow
// call delays only its own sender). It returns the rate achieved, from the
// first call to the last.
func paced(ctx context.Context, rate float64, total, senders int, fn func(i int)) float64 {
	start := time.Now().Add(5 * time.Millisecond)
	interval := time.Duration(float64(time.Second) / rate)
	var next atomic.Int64
	var last atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil {
					return
				}
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				fn(i)
				now := time.Now().UnixNano()
				for {
					old := last.Load()
					if now <= old || last.CompareAndSwap(old, now) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Unix(0, last.Load()).Sub(start)
	if elapsed <= 0 || total < 2 {
		return 0
	}
	return float64(total-1) / elapsed.Seconds()
}
