package store

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// Gauges is what the store holds now, across every host: the numbers a
// metrics scrape reports.
type Gauges struct {
	// Jobs counts the jobs with stats, by name and status (from the
	// listing indices; periodic policies and their executions included).
	Jobs map[string]map[job.Status]int64
	// Queued counts the entries waiting in each job name's queue.
	Queued map[string]int64
	// Scheduled and Retrying count the entries waiting for their run
	// time and for their retry; HooksDue the jobs with a status hook
	// event waiting for delivery.
	Scheduled, Retrying, HooksDue int64
}

// Gauges reads the gauges of the job names given, in one round trip.
func (s *Store) Gauges(ctx context.Context, names []string) (*Gauges, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: gauges: %w", err)
	}
	defer conn.Close()
	type cell struct {
		name   string
		status job.Status
	}
	var cells []cell
	for _, n := range names {
		for _, k := range job.Kinds {
			for _, st := range job.Statuses {
				if err := conn.Send("ZCARD", s.keys.Index(k, st, n)); err != nil {
					return nil, fmt.Errorf("store: gauges: %w", err)
				}
				cells = append(cells, cell{n, st})
			}
		}
		if err := conn.Send("LLEN", s.keys.Jobs(n)); err != nil {
			return nil, fmt.Errorf("store: gauges: %w", err)
		}
	}
	for _, k := range []string{s.keys.Scheduled(), s.keys.Retry(), s.keys.HooksDue()} {
		if err := conn.Send("ZCARD", k); err != nil {
			return nil, fmt.Errorf("store: gauges: %w", err)
		}
	}
	replies, err := redis.Int64s(redis.DoContext(conn, ctx, ""))
	if err != nil {
		return nil, fmt.Errorf("store: gauges: %w", err)
	}
	if want := len(cells) + len(names) + 3; len(replies) != want {
		return nil, fmt.Errorf("store: gauges: %d replies, want %d", len(replies), want)
	}
	g := &Gauges{Jobs: map[string]map[job.Status]int64{}, Queued: map[string]int64{}}
	i := 0
	for _, n := range names {
		g.Jobs[n] = map[job.Status]int64{}
		for range job.Kinds {
			for _, st := range job.Statuses {
				g.Jobs[n][st] += replies[i]
				i++
			}
		}
		g.Queued[n] = replies[i]
		i++
	}
	g.Scheduled, g.Retrying, g.HooksDue = replies[i], replies[i+1], replies[i+2]
	return g, nil
}
