package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// hgetall reads the stats hashes of ids in one round trip; a missing one
// is an empty map.
func (s *Store) hgetall(conn redis.Conn, ids []string) ([]map[string]string, error) {
	for _, id := range ids {
		if err := conn.Send("HGETALL", s.keys.Stats(id)); err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(ids))
	for i := range ids {
		m, err := redis.StringMap(conn.Receive())
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// statsOf reads the stats of ids, skipping those that are gone.
func (s *Store) statsOf(conn redis.Conn, ids []string) ([]*job.Stats, error) {
	maps, err := s.hgetall(conn, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*job.Stats, 0, len(ids))
	for _, m := range maps {
		if len(m) == 0 {
			continue
		}
		r, err := parseMap(m)
		if err != nil {
			return nil, err
		}
		out = append(out, r.stats)
	}
	return out, nil
}

// Scan returns about count jobs from a cursor over every stats hash
// (Redis SCAN: a job may show up twice, the page size varies) and the
// cursor of the next page, "0" when the scan is done.
func (s *Store) Scan(ctx context.Context, cursor string, count int) ([]*job.Stats, string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("store: list jobs: %w", err)
	}
	defer conn.Close()
	if cursor == "" {
		cursor = "0"
	}
	vals, err := redis.Values(redis.DoContext(conn, ctx, "SCAN", cursor, "MATCH", s.keys.StatsPattern(), "COUNT", count))
	if err != nil {
		return nil, "", fmt.Errorf("store: list jobs: %w", err)
	}
	var next string
	var keys []string
	if _, err := redis.Scan(vals, &next, &keys); err != nil {
		return nil, "", fmt.Errorf("store: list jobs: %w", err)
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = s.keys.StatsID(k)
	}
	sort.Strings(ids)
	out, err := s.statsOf(conn, ids)
	if err != nil {
		return nil, "", fmt.Errorf("store: list jobs: %w", err)
	}
	return out, next, nil
}

// ListScheduled returns page (from 1) of the jobs waiting for their run
// time, soonest first, and how many there are.
func (s *Store) ListScheduled(ctx context.Context, page, size int) ([]*job.Stats, int64, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	defer conn.Close()
	start := (page - 1) * size
	_ = conn.Send("ZCARD", s.keys.Scheduled())
	_ = conn.Send("ZRANGE", s.keys.Scheduled(), start, start+size-1)
	_ = conn.Flush()
	total, err := redis.Int64(conn.Receive())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	entries, err := redis.Strings(conn.Receive())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		var w struct {
			ID string `json:"id"`
		}
		if json.Unmarshal([]byte(e), &w) == nil && job.ValidID(w.ID) {
			ids = append(ids, w.ID)
		}
	}
	out, err := s.statsOf(conn, ids)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	return out, total, nil
}

// ListPolicies returns the active periodic policies, oldest first.
func (s *Store) ListPolicies(ctx context.Context) ([]*job.Stats, error) {
	ps, err := s.Policies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*job.Stats, len(ps))
	for i, p := range ps {
		out[i] = p.Stats
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].EnqueueTime != out[b].EnqueueTime {
			return out[a].EnqueueTime < out[b].EnqueueTime
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

// Executions returns the executions of a job (a periodic policy's runs or
// a job's sub-jobs), newest first. Their number is bounded by the store's
// MaxExecutions, so they are read whole.
func (s *Store) Executions(ctx context.Context, id string) ([]*job.Stats, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: executions of %s: %w", id, err)
	}
	defer conn.Close()
	ids, err := redis.Strings(redis.DoContext(conn, ctx, "ZREVRANGE", s.keys.Executions(id), 0, -1))
	if err != nil {
		return nil, fmt.Errorf("store: executions of %s: %w", id, err)
	}
	out, err := s.statsOf(conn, ids)
	if err != nil {
		return nil, fmt.Errorf("store: executions of %s: %w", id, err)
	}
	return out, nil
}

// HasExecutions tells whether a job has executions.
func (s *Store) HasExecutions(ctx context.Context, id string) (bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	n, err := redis.Int(redis.DoContext(conn, ctx, "EXISTS", s.keys.Executions(id)))
	return n == 1, err
}
