package daemon

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimit caps the connections a server holds at once. Unlike a plain
// cap (netutil.LimitListener), a full server makes room for a new
// connection by closing the one that has waited longest without a request
// in progress (never sent one, or idle between keep-alive requests):
// idle connections, however many a client opens, cannot keep others out.
// Only when every held connection is busy with a request does Accept wait.
type connLimit struct {
	net.Listener
	max int
	now func() time.Time

	mu    sync.Mutex
	conns map[net.Conn]*connEntry
	freed chan struct{} // a token when a connection closes
}

type connEntry struct {
	busy  bool      // a request is being read or answered
	since time.Time // when it became idle (or was accepted)
}

func newConnLimit(l net.Listener, max int) *connLimit {
	return &connLimit{Listener: l, max: max, now: time.Now, conns: map[net.Conn]*connEntry{}, freed: make(chan struct{}, 1)}
}

// Accept waits for a connection and makes room for it.
func (c *connLimit) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		if len(c.conns) < c.max {
			c.conns[conn] = &connEntry{since: c.now()}
			c.mu.Unlock()
			return conn, nil
		}
		victim := c.oldestIdle()
		if victim != nil {
			delete(c.conns, victim)
		}
		c.mu.Unlock()
		if victim != nil {
			victim.Close()
			continue
		}
		// Every connection is busy: wait for one to end.
		<-c.freed
	}
}

// oldestIdle is the connection idle the longest; c.mu is held.
func (c *connLimit) oldestIdle() net.Conn {
	var (
		victim net.Conn
		oldest time.Time
	)
	for conn, e := range c.conns {
		if !e.busy && (victim == nil || e.since.Before(oldest)) {
			victim, oldest = conn, e.since
		}
	}
	return victim
}

// state is the server's ConnState hook.
func (c *connLimit) state(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.conns[conn]
	switch s {
	case http.StateActive:
		if ok {
			e.busy = true
		}
	case http.StateIdle:
		if ok {
			e.busy, e.since = false, c.now()
		}
	case http.StateClosed, http.StateHijacked:
		if ok {
			delete(c.conns, conn)
			select {
			case c.freed <- struct{}{}:
			default:
			}
		}
	}
}
