package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Redis replicates asynchronously: when Sentinel promotes a replica, what
// the old primary took in the second or two before the hosts learn of the
// switch is missing from the new one, and the old primary drops it when it
// is made a replica. For the jobs a client was told were accepted, the
// store keeps a journal: each creation of the last JournalFor, as the step
// that made it. Replay makes again, on the primary of now, every journaled
// creation whose stats are missing there.

// Journal bounds: how long a creation is kept, and at most how many and
// how many bytes of them.
const (
	JournalFor      = 15 * time.Second
	journalMaxCount = 20000
	journalMaxBytes = 32 << 20
)

// journal is the creations of the last JournalFor, oldest first, from
// entries[head].
type journal struct {
	mu      sync.Mutex
	entries []creation
	head    int
	bytes   int
}

// creation is one step that created a job or policy: the script, its keys
// (the first is the stats key) and its arguments after the environment.
type creation struct {
	at     time.Time
	id     string
	script *redis.Script
	keys   []any
	args   []any
	size   int
}

// record keeps c, and drops what is too old or over the bounds.
func (j *journal) record(c creation) {
	for _, a := range c.args {
		if b, ok := a.([]byte); ok {
			c.size += len(b)
		} else if s, ok := a.(string); ok {
			c.size += len(s)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, c)
	j.bytes += c.size
	for j.head < len(j.entries) && (c.at.Sub(j.entries[j.head].at) > JournalFor ||
		len(j.entries)-j.head > journalMaxCount || j.bytes > journalMaxBytes) {
		j.bytes -= j.entries[j.head].size
		j.entries[j.head] = creation{} // for the collector
		j.head++
	}
	// Compact once the dropped half is the larger: amortised O(1).
	if j.head > len(j.entries)/2 {
		n := copy(j.entries, j.entries[j.head:])
		clear(j.entries[n:])
		j.entries, j.head = j.entries[:n], 0
	}
}

// recent returns the creations kept at now.
func (j *journal) recent(now time.Time) []creation {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]creation, 0, len(j.entries)-j.head)
	for _, c := range j.entries[j.head:] {
		if now.Sub(c.at) <= JournalFor {
			out = append(out, c)
		}
	}
	return out
}

// journaled runs a creation step and, when the store keeps a journal and
// the step created what it names, records it.
func (s *Store) journaled(ctx context.Context, id string, script *redis.Script, keys []any, args ...any) (answer, error) {
	a, err := s.change(ctx, script, keys, args...)
	if err == nil && s.journal != nil && a.tag == "ok" {
		s.journal.record(creation{at: s.now(), id: id, script: script, keys: keys, args: args})
	}
	return a, err
}

// Replay makes again every job and policy created through this store in
// the last JournalFor whose stats Redis no longer holds, as it was
// created, and returns their IDs. A host calls it when the Sentinel
// primary changed. A creation that fails now (a unique job whose claim
// another job took meanwhile) is skipped with the others made; the error
// names the first. Without Options.Journal it does nothing.
func (s *Store) Replay(ctx context.Context) ([]string, error) {
	if s.journal == nil {
		return nil, nil
	}
	recent := s.journal.recent(s.now())
	if len(recent) == 0 {
		return nil, nil
	}
	missing, err := s.missingStats(ctx, recent)
	if err != nil {
		return nil, fmt.Errorf("store: replay: %w", err)
	}
	var made []string
	var first error
	for _, c := range missing {
		a, err := s.change(ctx, c.script, c.keys, c.args...)
		if err == nil && a.tag != "ok" {
			err = fmt.Errorf("answered %q %q", a.tag, a.values)
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("store: replay the creation of %s: %w", c.id, err)
			}
			continue
		}
		made = append(made, c.id)
	}
	return made, first
}

// missingStats returns the creations whose stats key does not exist, in
// one round trip.
func (s *Store) missingStats(ctx context.Context, cs []creation) ([]creation, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, c := range cs {
		if err := conn.Send("EXISTS", c.keys[0]); err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	var out []creation
	for _, c := range cs {
		n, err := redis.Int(redis.ReceiveContext(conn, ctx))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			out = append(out, c)
		}
	}
	return out, nil
}
