package redisx

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// clockInterval is how often the embedded server's TTLs are advanced.
const clockInterval = time.Second

// embedded is an in-memory Redis (miniredis) listening on loopback TCP, so
// that the pool, gocraft/work's Lua scripts and pub/sub talk to it exactly as
// to a real server.
type embedded struct {
	m *miniredis.Miniredis
}

func startEmbedded() (*embedded, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("redisx: start embedded Redis on 127.0.0.1: %w", err)
	}
	return &embedded{m: m}, nil
}

func (e *embedded) addr() string { return e.m.Addr() }

// runClock makes TTLs run in real time until ctx ends: miniredis only expires
// keys when told that time has passed. Advancing once per clockInterval
// (cost: one pass over the keys) rather than with miniredis's ClockTTL (a
// sorted pass over the keys on every command) keeps commands cheap; expiry
// is accurate to clockInterval.
func (e *embedded) runClock(ctx context.Context) {
	tick := time.NewTicker(clockInterval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

func (e *embedded) close() { e.m.Close() }
