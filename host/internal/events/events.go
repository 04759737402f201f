package events

import (
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/host/internal/job"
)

// Observer sees every event. It must return quickly and must not block.
type Observer func(job.Event)

// Bus hands events to observers and subscriptions. The zero value is not
// usable; call New.
type Bus struct {
	mu        sync.RWMutex
	observers []*observer
	subs      map[*Subscription]struct{}
}

type observer struct{ fn Observer }

// New returns an empty Bus.
func New() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Observe registers fn; the returned function unregisters it.
func (b *Bus) Observe(fn Observer) (remove func()) {
	o := &observer{fn: fn}
	b.mu.Lock()
	b.observers = append(b.observers, o)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, x := range b.observers {
			if x == o {
				b.observers = append(b.observers[:i:i], b.observers[i+1:]...)
				return
			}
		}
	}
}

// Subscribe returns a subscription that buffers up to buffer events
// (at least 1).
func (b *Bus) Subscribe(buffer int) *Subscription {
	s := &Subscription{bus: b, c: make(chan job.Event, max(buffer, 1))}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish hands evs, in order, to every observer and subscription.
func (b *Bus) Publish(evs ...job.Event) {
	if len(evs) == 0 {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, ev := range evs {
		for _, o := range b.observers {
			o.fn(ev)
		}
		for s := range b.subs {
			select {
			case s.c <- ev:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

// Subscription is a buffered stream of events.
type Subscription struct {
	bus     *Bus
	c       chan job.Event
	dropped atomic.Uint64
	once    sync.Once
}

// C delivers the events; it is closed by Close.
func (s *Subscription) C() <-chan job.Event { return s.c }

// Dropped is how many events did not fit the buffer.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C. Safe twice.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.c)
	})
}
