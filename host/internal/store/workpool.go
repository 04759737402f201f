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
