package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// TakeReaperLock makes this caller the host doing the reaper's pass for
// ttl; false when another host holds it.
func (s *Store) TakeReaperLock(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_, err = redis.String(redis.DoContext(conn, ctx, "SET", s.keys.ReaperLock(), holder, "NX", "PX", ttl.Milliseconds()))
	if err == redis.ErrNil {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: take the reaper lock: %w", err)
	}
	return true, nil
}

// ReapPool re-queues the jobs of a dead worker pool for the given job
// names, frees its concurrency slots and forgets it; it returns how many
// jobs went back to their queues.
func (s *Store) ReapPool(ctx context.Context, poolID string, names []string) (int, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	keys := []any{s.keys.WorkerPools(), s.keys.Heartbeat(poolID)}
	for _, n := range names {
		keys = append(keys, s.keys.Jobs(n), s.keys.InProgress(n, poolID), s.keys.Lock(n), s.keys.LockInfo(n))
	}
	args := append(append([]any{len(keys)}, keys...), poolID, s.keys.Doorbell())
	for _, n := range names {
		args = append(args, n)
	}
	moved, err := redis.Int(scriptReapPool.DoContext(ctx, conn, args...))
	if err != nil {
		return 0, fmt.Errorf("store: reap worker pool %s: %w", poolID, err)
	}
	return moved, nil
}

// KnownJobs lists the job names gocraft/work knows.
func (s *Store) KnownJobs(ctx context.Context) ([]string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redis.Strings(redis.DoContext(conn, ctx, "SMEMBERS", s.keys.KnownJobs()))
}

// RunningJob is a job in status Running, as the reaper sees it.
type RunningJob struct {
	ID       string
	Revision int64
	// UpdateTime is its last progress (start or check-in), unix s.
	UpdateTime int64
}

// Running lists up to limit running jobs of the given names (every kind)
// with their last progress.
func (s *Store) Running(ctx context.Context, names []string, limit int) ([]RunningJob, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var keys []string
	for _, n := range names {
		for _, k := range job.Kinds {
			keys = append(keys, s.keys.Index(k, job.Running, n))
		}
	}
	for _, k := range keys {
		_ = conn.Send("ZRANGE", k, 0, limit-1)
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("store: list running jobs: %w", err)
	}
	var ids []string
	for range keys {
		v, err := redis.Strings(conn.Receive())
		if err != nil {
			return nil, fmt.Errorf("store: list running jobs: %w", err)
		}
		ids = append(ids, v...)
	}
	if len(ids) > limit {
		ids = ids[:limit]
	}
	for _, id := range ids {
		_ = conn.Send("HMGET", s.keys.Stats(id), fStatus, fRevision, fUpdateTime)
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("store: list running jobs: %w", err)
	}
	out := make([]RunningJob, 0, len(ids))
	for _, id := range ids {
		v, err := redis.Strings(conn.Receive())
		if err != nil {
			return nil, fmt.Errorf("store: list running jobs: %w", err)
		}
		if len(v) != 3 || v[0] != string(job.Running) {
			continue // moved on meanwhile, or gone (pruned by listings)
		}
		rev, _ := strconv.ParseInt(v[1], 10, 64)
		at, _ := strconv.ParseInt(v[2], 10, 64)
		out = append(out, RunningJob{ID: id, Revision: rev, UpdateTime: at})
	}
	return out, nil
}

// RefireHooks looks at about count jobs, continuing a scan that every
// pass takes further, and queues a fresh event with the current status of
// each job whose receiver's ack is behind it and that has no event
// waiting. It returns how many it queued and whether the scan wrapped.
func (s *Store) RefireHooks(ctx context.Context, count int) (int, bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	cursor, err := redis.String(redis.DoContext(conn, ctx, "GET", s.keys.ReaperCursor()))
	if err != nil && err != redis.ErrNil {
		return 0, false, err
	}
	if cursor == "" {
		cursor = "0"
	}
	vals, err := redis.Values(redis.DoContext(conn, ctx, "SCAN", cursor, "MATCH", s.keys.StatsPattern(), "COUNT", count))
	if err != nil {
		return 0, false, fmt.Errorf("store: scan for hooks: %w", err)
	}
	var next string
	var keys []string
	if _, err := redis.Scan(vals, &next, &keys); err != nil {
		return 0, false, err
	}
	fired := 0
	env := s.env(s.now())
	for _, k := range keys {
		n, err := redis.Int(scriptRefireHook.DoContext(ctx, conn, append([]any{k}, env...)...))
		if err != nil {
			return fired, false, fmt.Errorf("store: re-fire hook of %s: %w", s.keys.StatsID(k), err)
		}
		fired += n
	}
	if _, err := redis.DoContext(conn, ctx, "SET", s.keys.ReaperCursor(), next); err != nil {
		return fired, false, err
	}
	return fired, next == "0", nil
}

// Signal asks the host running a job, wherever it is, to stop or cancel
// it, without changing its stats.
func (s *Store) Signal(ctx context.Context, id, op string) error {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = redis.DoContext(conn, ctx, "PUBLISH", s.keys.Signals(), op+" "+id)
	return err
}
