package hook

import (
	"sync"
	"time"

	"github.com/berth-dev/berth/host/internal/backoff"
)

// breaker remembers the endpoints that keep failing and skips them for a
// growing while. It holds at most limit endpoints: only failing ones are
// kept, and when full, the one skipped the longest ago makes room.
type breaker struct {
	threshold int
	limit     int
	wait      backoff.Policy

	mu        sync.Mutex
	endpoints map[string]*endpointState
	now       func() time.Time
}

type endpointState struct {
	failures  int
	openUntil time.Time
}

func newBreaker(threshold, limit int, wait backoff.Policy) *breaker {
	return &breaker{threshold: threshold, limit: limit, wait: wait,
		endpoints: make(map[string]*endpointState), now: time.Now}
}

// open tells whether the endpoint is being skipped, and for how long.
func (b *breaker) open(endpoint string) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.endpoints[endpoint]
	if s == nil {
		return 0, false
	}
	if wait := s.openUntil.Sub(b.now()); wait > 0 {
		return wait, true
	}
	return 0, false
}

func (b *breaker) success(endpoint string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.endpoints, endpoint)
}

func (b *breaker) failure(endpoint string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.endpoints[endpoint]
	if s == nil {
		if len(b.endpoints) >= b.limit {
			b.evict()
		}
		s = &endpointState{}
		b.endpoints[endpoint] = s
	}
	s.failures++
	if s.failures < b.threshold {
		return
	}
	s.openUntil = b.now().Add(b.wait.Delay(s.failures - b.threshold + 1))
}

// evict drops the endpoint whose skip ended first; b.mu is held.
func (b *breaker) evict() {
	var oldest string
	var at time.Time
	for e, s := range b.endpoints {
		if oldest == "" || s.openUntil.Before(at) {
			oldest, at = e, s.openUntil
		}
	}
	delete(b.endpoints, oldest)
}

// size is the number of endpoints remembered.
func (b *breaker) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.endpoints)
}
