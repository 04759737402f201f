package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomodule/redigo/redis"
)

// RecordLogLoss keeps why a job's log is incomplete (the first reason
// given), as long as the longest-kept final stats, so that every host
// reading the log can say so.
func (s *Store) RecordLogLoss(ctx context.Context, id, reason string) error {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("store: record a log loss: %w", err)
	}
	defer conn.Close()
	ttl := max(s.ttl.Success, s.ttl.Stopped, s.ttl.Error)
	if _, err := redis.DoContext(conn, ctx, "SET", s.keys.LogLoss(id), reason, "NX", "EX", int64(ttl.Seconds())); err != nil {
		return fmt.Errorf("store: record a log loss: %w", err)
	}
	return nil
}

// LogLoss returns why a job's log is incomplete, if a host said so.
func (s *Store) LogLoss(ctx context.Context, id string) (string, bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return "", false, fmt.Errorf("store: read a log loss: %w", err)
	}
	defer conn.Close()
	reason, err := redis.String(redis.DoContext(conn, ctx, "GET", s.keys.LogLoss(id)))
	if errors.Is(err, redis.ErrNil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: read a log loss: %w", err)
	}
	return reason, true, nil
}
