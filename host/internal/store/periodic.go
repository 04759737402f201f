package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// CreatePolicy stores a periodic policy (kind Periodic, status Scheduled)
// and makes it active.
func (s *Store) CreatePolicy(ctx context.Context, st *job.Stats) ([]job.Event, error) {
	fields, err := statsArgs(st)
	if err != nil {
		return nil, err
	}
	a, err := s.journaled(ctx, st.ID, scriptCreatePolicy, []any{s.keys.Stats(st.ID), s.keys.Policies()}, append([]any{st.ID}, fields...)...)
	if err != nil {
		return nil, fmt.Errorf("store: create policy %s: %w", st.ID, err)
	}
	return a.events, nil
}

// Policy is an active periodic policy.
type Policy struct {
	Stats *job.Stats
	// LastFire is the latest fire time that has an execution (unix s).
	LastFire int64
}

// Policies lists the active periodic policies.
func (s *Store) Policies(ctx context.Context) ([]Policy, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	defer conn.Close()
	ids, err := redis.Strings(redis.DoContext(conn, ctx, "SMEMBERS", s.keys.Policies()))
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	maps, err := s.hgetall(conn, ids)
	if err != nil {
		return nil, fmt.Errorf("store: list policies: %w", err)
	}
	var out []Policy
	for i, m := range maps {
		if len(m) == 0 {
			// Expired or removed by hand: forget it.
			_, _ = conn.Do("SREM", s.keys.Policies(), ids[i])
			continue
		}
		r, err := parseMap(m)
		if err != nil {
			return nil, err
		}
		last, _ := strconv.ParseInt(m[fLastFire], 10, 64)
		out = append(out, Policy{Stats: r.stats, LastFire: last})
	}
	return out, nil
}

// fLastFire is the latest fire time with an execution, on a policy.
const fLastFire = "last_fire"

// ExecutionOutcome is what CreateExecution did.
type ExecutionOutcome int

// Execution outcomes.
const (
	// ExecutionCreated: this call created the execution.
	ExecutionCreated ExecutionOutcome = iota
	// ExecutionDone: the fire time already has its execution (another host
	// made it), or is older than the policy's latest one.
	ExecutionDone
	// PolicyInactive: the policy is stopped or gone.
	PolicyInactive
)

// CreateExecution creates the execution of policy p at fire time t (unix
// s): stats of kind Scheduled with upstream_job_id = the policy, and an
// entry in the scheduled set. Every host may call it for every fire time;
// exactly one creates the execution.
func (s *Store) CreateExecution(ctx context.Context, p *job.Stats, t int64) (ExecutionOutcome, []job.Event, error) {
	now := s.Now()
	ex := &job.Stats{
		ID: job.ExecutionID(p.ID, t), Name: p.Name, Kind: job.KindScheduled, Status: job.Scheduled,
		CronSpec: p.CronSpec, EnqueueTime: now, UpdateTime: now, RunAt: t, WebHookURL: p.WebHookURL,
		UpstreamJobID: p.ID, Parameters: p.Parameters, Revision: now, Unique: p.Unique,
	}
	ex.RefLink = job.RefLink(ex.ID)
	fields, err := statsArgs(ex)
	if err != nil {
		return 0, nil, err
	}
	if ex.Unique {
		// The execution takes the claim when it starts (scriptStart), so
		// that it never runs beside its predecessor or any job with the
		// same name and parameters.
		claim, err := s.keys.Unique(ex.Name, nonNil(ex.Parameters))
		if err != nil {
			return 0, nil, err
		}
		fields = append(fields, fUniqueKey, claim)
	}
	ent, err := entry(ex)
	if err != nil {
		return 0, nil, err
	}
	keys := []any{s.keys.Stats(ex.ID), s.keys.Scheduled(), s.known(ex.Name, s.keys.Stats(ex.ID)), s.keys.Executions(p.ID), s.keys.Stats(p.ID)}
	a, err := s.change(ctx, scriptCreateExecution, keys, append([]any{ent, t, ex.Name, ex.ID, s.keys.Timer()}, fields...)...)
	if err != nil {
		return 0, nil, fmt.Errorf("store: create execution %s: %w", ex.ID, err)
	}
	switch a.tag {
	case "ok":
		return ExecutionCreated, a.events, nil
	case "old", "exists":
		return ExecutionDone, nil, nil
	case "inactive":
		return PolicyInactive, nil, nil
	}
	return 0, nil, fmt.Errorf("store: create execution %s: unexpected reply %q", ex.ID, a.tag)
}

// StopPolicy unschedules a periodic policy, stops its executions that
// have not started and signals its running ones to stop (their runners
// end them). It reports false when the policy had already ended.
func (s *Store) StopPolicy(ctx context.Context, id string, op job.Action) (bool, []job.Event, error) {
	keys := []any{s.keys.Stats(id), s.keys.Policies(), s.keys.Executions(id), s.keys.Scheduled(), s.keys.Retry()}
	a, err := s.change(ctx, scriptStopPolicy, keys, string(op), id, s.keys.Signals())
	if err != nil {
		return false, nil, fmt.Errorf("store: %s policy %s: %w", op, id, err)
	}
	switch a.tag {
	case "missing":
		return false, nil, fmt.Errorf("%w: %s", job.ErrNotFound, id)
	case "final":
		return false, nil, nil
	case "stopped":
		return true, a.events, nil
	}
	return false, nil, fmt.Errorf("store: %s policy %s: unexpected reply %q", op, id, a.tag)
}

// Retry re-runs a job in Error now, in a new revision, with a fresh
// failure count. Refused when the job is not in Error; a unique job whose
// claim another job took meanwhile (one that has not ended) is refused
// with *job.ConflictError naming it.
func (s *Store) Retry(ctx context.Context, st *job.Stats) (Result, error) {
	ent, err := entry(st)
	if err != nil {
		return Result{}, err
	}
	keys := []any{s.keys.Stats(st.ID), s.keys.Jobs(st.Name), s.known(st.Name, s.keys.Stats(st.ID)), s.keys.Retry()}
	a, err := s.change(ctx, scriptRetry, keys, ent, st.Name, s.keys.Doorbell())
	if err != nil {
		return Result{}, fmt.Errorf("store: retry job %s: %w", st.ID, err)
	}
	switch a.tag {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "refused":
		return Result{Outcome: Refused, Current: job.Status(first(a.values))}, nil
	case "dup":
		return Result{}, &job.ConflictError{Name: st.Name, ExistingID: first(a.values)}
	case "ok":
		rev, err := strconv.ParseInt(first(a.values), 10, 64)
		if err != nil {
			break
		}
		return Result{Outcome: Moved, Events: a.events, Stats: &job.Stats{ID: st.ID, Status: job.Pending, Revision: rev, UpdateTime: s.Now()}}, nil
	}
	return Result{}, fmt.Errorf("store: retry job %s: unexpected reply %q", st.ID, a.tag)
}

// MoveDue moves the due entries of the scheduled and retry sets of the
// given job names into their queues (at most limit from each set). It
// returns how many it moved, how many malformed entries it dropped, and
// the unix second of the next entry not yet due (0 when none).
func (s *Store) MoveDue(ctx context.Context, names []string, limit int) (moved, dropped int, next int64, err error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	args := []any{2 + len(names), s.keys.Scheduled(), s.keys.Retry()}
	for _, n := range names {
		args = append(args, s.keys.Jobs(n))
	}
	args = append(args, s.Now(), s.keys.Doorbell(), limit)
	for _, n := range names {
		args = append(args, n)
	}
	vals, err := redis.Values(scriptMoveDue.DoContext(ctx, conn, args...))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("store: move due jobs: %w", err)
	}
	var nextS string
	if _, err := redis.Scan(vals, &moved, &dropped, &nextS); err != nil {
		return 0, 0, 0, fmt.Errorf("store: move due jobs: %w", err)
	}
	if nextS != "" {
		next, _ = strconv.ParseInt(nextS, 10, 64)
	}
	return moved, dropped, next, nil
}
