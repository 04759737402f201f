package fakeclock

import (
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/host/internal/clock"
)

// Clock is a fake clock. The zero value is not usable; call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	// changed is closed (and replaced) whenever a timer is made or reset,
	// so that WaitTimers can wait for a component to go back to sleep.
	changed chan struct{}
}

var _ clock.Clock = (*Clock)(nil)

// New returns a clock at t.
func New(t time.Time) *Clock { return &Clock{now: t, changed: make(chan struct{})} }

// Now is the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the time forward by d and fires the timers due.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the time to t (never back) and fires the timers due, in order.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	var due []*timer
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.now) {
			due = append(due, tm)
		} else {
			kept = append(kept, tm)
		}
	}
	c.timers = kept
	now := c.now
	c.mu.Unlock()
	sort.Slice(due, func(a, b int) bool { return due[a].at.Before(due[b].at) })
	for _, tm := range due {
		select {
		case tm.c <- now:
		default:
		}
	}
}

// Timers is the number of timers waiting.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitTimers waits until at least n timers wait (a component went to
// sleep), for at most limit of real time; false if they never did.
func (c *Clock) WaitTimers(n int, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return true
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// NewTimer makes a timer that fires once the fake time reaches now+d.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	t := &timer{clock: c, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

type timer struct {
	clock *Clock
	c     chan time.Time
	at    time.Time
}

func (t *timer) C() <-chan time.Time { return t.c }

func (t *timer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, tm := range c.timers {
		if tm == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

func (t *timer) Reset(d time.Duration) bool {
	active := t.Stop()
	c := t.clock
	c.mu.Lock()
	t.at = c.now.Add(d)
	fire := d <= 0
	if !fire {
		c.timers = append(c.timers, t)
	}
	now := c.now
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if fire {
		select {
		case t.c <- now:
		default:
		}
	}
	return active
}
