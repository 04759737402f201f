package store

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"
)

// The two commands package queue makes on gocraft/work's keys beside
// gocraft/work itself.

// WorkerPoolIDs lists the IDs gocraft/work's worker_pools set holds: the
// worker pools of every host, as their heartbeats register them.
func (s *Store) WorkerPoolIDs(ctx context.Context) ([]string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ids, err := redis.Strings(redis.DoContext(conn, ctx, "SMEMBERS", s.keys.WorkerPools()))
	if err != nil {
		return nil, fmt.Errorf("store: list worker pools: %w", err)
	}
	return ids, nil
}

// HandBack puts a gocraft/work queue entry of job type name back at the
// head of its queue (gocraft/work takes the oldest entry, on the right),
// for a worker that took it but must not run it.
func (s *Store) HandBack(ctx context.Context, name string, entry []byte) error {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := redis.DoContext(conn, ctx, "RPUSH", s.keys.Jobs(name), entry); err != nil {
		return fmt.Errorf("store: hand back an entry of %s: %w", name, err)
	}
	return nil
}

// InProgress returns, for each of names, the entries of worker pool
// poolID's in-progress list (gocraft/work's entries of the jobs its
// workers took), in one round trip.
func (s *Store) InProgress(ctx context.Context, poolID string, names []string) (map[string][]string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, n := range names {
		if err := conn.Send("LRANGE", s.keys.InProgress(n, poolID), 0, -1); err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(names))
	for _, n := range names {
		entries, err := redis.Strings(redis.ReceiveContext(conn, ctx))
		if err != nil {
			return nil, fmt.Errorf("store: in-progress entries of pool %s: %w", poolID, err)
		}
		if len(entries) > 0 {
			out[n] = entries
		}
	}
	return out, nil
}

// RequeueOrphan moves an entry of job type name that no worker runs from
// pool poolID's in-progress list back to the head of its queue, gives
// back the concurrency slot gocraft/work's fetch took for it (:lock and
// the pool's :lock_info share, never below 0) and rings the doorbell. It
// answers false when the entry was no longer there.
func (s *Store) RequeueOrphan(ctx context.Context, poolID, name, entry string) (bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	n, err := redis.Int(scriptRequeueOrphan.DoContext(ctx, conn,
		s.keys.InProgress(name, poolID), s.keys.Jobs(name), s.keys.Lock(name), s.keys.LockInfo(name),
		entry, poolID, s.keys.Doorbell(), name))
	if err != nil {
		return false, fmt.Errorf("store: requeue an orphaned entry of %s: %w", name, err)
	}
	return n == 1, nil
}
