package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// ReasonLeaseExpired is the reason of the event of a running job queued
// again because its lease expired (RecoverLease).
const ReasonLeaseExpired job.Reason = "lease_expired"

// Holder is this store's lease holder: the name of this host in the leases
// of the jobs it runs.
func (s *Store) Holder() string { return s.holder }

// LeaseTTL is how long a lease lasts from its start or last renewal.
func (s *Store) LeaseTTL() time.Duration { return s.lease }

// Lease is a running job's lease as its holder knows it: the job and the
// revision of the run.
type Lease struct {
	ID       string
	Revision int64
}

// RenewLeases renews, in one step, the leases this store's holder holds,
// for another LeaseTTL from now, and returns the IDs of the jobs whose
// lease it lost: another host recovered the job (its lease had expired),
// or the job no longer runs in that revision. A lease that expired but
// that nobody recovered is renewed.
func (s *Store) RenewLeases(ctx context.Context, leases []Lease) ([]string, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 5+2*len(leases))
	args = append(args, s.keys.Leases(), s.keys.LeaseHolders(), s.holder, s.now().Add(s.lease).UnixMilli(), s.keys.StatsPrefix())
	for _, l := range leases {
		args = append(args, l.ID, strconv.FormatInt(l.Revision, 10))
	}
	lost, err := s.run(ctx, scriptRenewLeases, args...)
	if err != nil {
		return nil, fmt.Errorf("store: renew %d leases: %w", len(leases), err)
	}
	return lost, nil
}

// LeaseHolder returns the holder of running job id's lease, "" when it
// has none.
func (s *Store) LeaseHolder(ctx context.Context, id string) (string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	h, err := redis.String(redis.DoContext(conn, ctx, "HGET", s.keys.LeaseHolders(), id))
	if errors.Is(err, redis.ErrNil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: lease holder of job %s: %w", id, err)
	}
	return h, nil
}

// ExpiredLeases lists up to limit jobs whose lease expired, the oldest
// first.
func (s *Store) ExpiredLeases(ctx context.Context, limit int) ([]string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ids, err := redis.Strings(redis.DoContext(conn, ctx, "ZRANGEBYSCORE", s.keys.Leases(), "-inf", s.now().UnixMilli(), "LIMIT", 0, limit))
	if err != nil {
		return nil, fmt.Errorf("store: list expired leases: %w", err)
	}
	return ids, nil
}

// RecoverLease recovers running job id when its lease expired (see
// scriptRecoverLease): Moved when it is queued again in a new revision,
// StoppedOnStart when it had been asked to stop and ends Stopped, Refused
// when its lease was renewed meanwhile, Missing when the job no longer
// runs (its lease is dropped).
func (s *Store) RecoverLease(ctx context.Context, id string) (Result, error) {
	statsKey := s.keys.Stats(id)
	keys := []any{statsKey, statsKey, statsKey}
	var ent []byte
	name := ""
	st, err := s.Get(ctx, id)
	switch {
	case errors.Is(err, job.ErrNotFound):
		// No stats: the script drops the lease.
	case err != nil:
		return Result{}, fmt.Errorf("store: recover job %s: %w", id, err)
	default:
		e, err := entryOf(st)
		if err != nil {
			return Result{}, fmt.Errorf("store: recover job %s: %w", id, err)
		}
		if ent, err = e.bytes(); err != nil {
			return Result{}, fmt.Errorf("store: recover job %s: %w", id, err)
		}
		name = st.Name
		keys[1], keys[2] = s.keys.Jobs(name), s.keys.KnownJobs()
	}
	a, err := s.change(ctx, scriptRecoverLease, keys, id, ent, name, s.keys.Doorbell())
	if err != nil {
		return Result{}, fmt.Errorf("store: recover job %s: %w", id, err)
	}
	switch a.tag {
	case "gone":
		return Result{Outcome: Missing}, nil
	case "held":
		return Result{Outcome: Refused, Current: job.Running}, nil
	case "requeued", "stopped":
		rev, err := strconv.ParseInt(first(a.values), 10, 64)
		if err != nil {
			break
		}
		r := Result{Outcome: Moved, Events: a.events, Stats: &job.Stats{ID: id, Status: job.Pending, Revision: rev}}
		if a.tag == "stopped" {
			r.Outcome, r.Stats.Status = StoppedOnStart, job.Stopped
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("store: recover job %s: unexpected reply %q %q", id, a.tag, a.values)
}

// Transient tells whether an error of a store call may go away by waiting:
// Redis could not be reached or is not ready (loading its data, a replica
// during a failover, busy with a script), as opposed to an answer that
// refuses the change itself.
func Transient(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return true
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"} {
		if strings.HasPrefix(string(re), p) {
			return true
		}
	}
	return false
}
