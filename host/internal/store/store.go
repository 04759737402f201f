package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// TTLs of final stats.
type TTLs struct {
	Success, Stopped, Error time.Duration
}

// Store reads and changes jobs in Redis.
type Store struct {
	pool    *redis.Pool
	keys    Keys
	ttl     TTLs
	now     func() time.Time
	execCap int
	hookCap int
}

// Options configure a Store.
type Options struct {
	// Namespace, without braces.
	Namespace string
	TTL       TTLs
	// MaxExecutions bounds the executions kept per periodic policy or
	// parent job (default 100); the oldest ended ones go first.
	MaxExecutions int
	// MaxHookCheckIns bounds the check-in events waiting for delivery per
	// job (default 1000); status changes are always kept.
	MaxHookCheckIns int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a Store on pool.
func New(pool *redis.Pool, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TTL.Success <= 0 {
		opts.TTL.Success = 24 * time.Hour
	}
	if opts.TTL.Stopped <= 0 {
		opts.TTL.Stopped = 24 * time.Hour
	}
	if opts.TTL.Error <= 0 {
		opts.TTL.Error = 7 * 24 * time.Hour
	}
	if opts.MaxExecutions <= 0 {
		opts.MaxExecutions = 100
	}
	if opts.MaxHookCheckIns <= 0 {
		opts.MaxHookCheckIns = 1000
	}
	return &Store{pool: pool, keys: NewKeys(opts.Namespace), ttl: opts.TTL, now: opts.Now,
		execCap: opts.MaxExecutions, hookCap: opts.MaxHookCheckIns}
}

// changeArgs are the trailing ARGV of every script that changes a
// status: what trim needs for a parent's executions, the running index,
// and what emit needs to queue a hook event (see scripts.go).
func (s *Store) changeArgs() []any {
	return []any{s.keys.ExecutionsPrefix(), s.keys.StatsPrefix(), s.execCap,
		s.keys.Running(), s.keys.HookEventsPrefix(), s.keys.HooksDue(), s.keys.Hooks(), s.hookCap, s.now().UnixMilli()}
}

// Keys returns the keys of the store's namespace.
func (s *Store) Keys() Keys { return s.keys }

// Pool returns the Redis pool.
func (s *Store) Pool() *redis.Pool { return s.pool }

// Now is the store's clock in unix seconds.
func (s *Store) Now() int64 { return s.now().Unix() }

// ttlOf is the TTL in seconds of a job in status st (0: none).
func (s *Store) ttlOf(st job.Status) int64 {
	switch st {
	case job.Success:
		return int64(s.ttl.Success / time.Second)
	case job.Stopped:
		return int64(s.ttl.Stopped / time.Second)
	case job.Error:
		return int64(s.ttl.Error / time.Second)
	}
	return 0
}

func (s *Store) run(ctx context.Context, script *redis.Script, keysAndArgs ...any) ([]string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redis.Strings(script.DoContext(ctx, conn, keysAndArgs...))
}

// Create stores the stats of a new job and makes it visible to workers in
// the same step: a Generic job is queued, a Scheduled one waits for RunAt.
// A unique job that duplicates one still queued is refused with
// *job.ConflictError. A job with an UpstreamJobID becomes one of its
// parent's executions.
func (s *Store) Create(ctx context.Context, st *job.Stats) error {
	fields, err := statsArgs(st)
	if err != nil {
		return err
	}
	mode, target := "list", s.keys.Jobs(st.Name)
	if st.Status == job.Scheduled {
		mode, target = "zset", s.keys.Scheduled()
	}
	ent, err := entry(st)
	if err != nil {
		return err
	}
	statsKey := s.keys.Stats(st.ID)
	unique, uniqueKey := "0", statsKey
	if st.Unique {
		if uniqueKey, err = s.keys.Unique(st.Name, nonNil(st.Parameters)); err != nil {
			return err
		}
		unique = "1"
	}
	link, parentKey := "0", statsKey
	if st.UpstreamJobID != "" {
		link, parentKey = "1", s.keys.Executions(st.UpstreamJobID)
	}
	args := []any{statsKey, target, s.keys.KnownJobs(), uniqueKey, parentKey,
		mode, ent, st.RunAt, st.Name, st.ID, s.keys.Doorbell(), s.keys.Timer(), unique, link,
		s.execCap, s.keys.StatsPrefix(), s.ttlOf(job.Error), linkScore(st)}
	res, err := s.run(ctx, scriptCreate, append(args, fields...)...)
	if err != nil {
		return fmt.Errorf("store: create job %s: %w", st.ID, err)
	}
	switch res[0] {
	case "ok":
		return nil
	case "dup":
		return &job.ConflictError{Name: st.Name, ExistingID: res[1]}
	case "exists":
		return fmt.Errorf("store: create job %s: a job with this ID exists", st.ID)
	}
	return fmt.Errorf("store: create job %s: unexpected reply %q", st.ID, res)
}

// linkScore orders a sub-job among its parent's executions: by its run
// time when it has one, else by submission.
func linkScore(st *job.Stats) int64 {
	if st.RunAt != 0 {
		return st.RunAt
	}
	return st.EnqueueTime
}

func nonNil(p job.Parameters) map[string]any {
	if p == nil {
		return map[string]any{}
	}
	return p
}

// Get returns a job's stats, or job.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*job.Stats, error) {
	r, err := s.getRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.stats, nil
}

func (s *Store) getRecord(ctx context.Context, id string) (*record, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: get job %s: %w", id, err)
	}
	defer conn.Close()
	m, err := redis.StringMap(redis.DoContext(conn, ctx, "HGETALL", s.keys.Stats(id)))
	if err != nil {
		return nil, fmt.Errorf("store: get job %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: %s", job.ErrNotFound, id)
	}
	return parseMap(m)
}

// Outcome is what a status change did.
type Outcome int

// Outcomes.
const (
	// Moved: the status changed.
	Moved Outcome = iota
	// Same: the job already had that status; nothing changed.
	Same
	// Refused: the rule forbids the change; Stats is nil, Current holds
	// the status found.
	Refused
	// Missing: there are no stats (never created, or expired).
	Missing
	// StoppedOnStart: a job whose stop was asked while its host died ended
	// Stopped instead of starting.
	StoppedOnStart
)

// Result of a status change.
type Result struct {
	Outcome Outcome
	// Stats after the change (nil when Refused or Missing). Start and Move
	// fill only ID, Status, Revision and, for Start, UpstreamJobID: they
	// are the hot path of every job.
	Stats *job.Stats
	// Params is the JSON of the job's parameters, as stored (Start only).
	Params []byte
	// Current is the status found when Refused.
	Current job.Status
	// OP is the operator's request recorded on the job (stop or cancel).
	OP job.Action
}

func (s *Store) result(op string, id string, res []string) (Result, error) {
	switch res[0] {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "refused":
		r := Result{Outcome: Refused}
		if len(res) > 1 {
			r.Current = job.Status(res[1])
		}
		return r, nil
	}
	rec, err := parseRecord(res[1:])
	if err != nil {
		return Result{}, fmt.Errorf("store: %s job %s: %w", op, id, err)
	}
	r := Result{Stats: rec.stats, OP: rec.opCommand}
	switch res[0] {
	case "ok":
		r.Outcome = Moved
	case "same":
		r.Outcome = Same
	case "stopped":
		r.Outcome = StoppedOnStart
	default:
		return Result{}, fmt.Errorf("store: %s job %s: unexpected reply %q", op, id, res[0])
	}
	return r, nil
}

// Start moves a job that a worker took to Running (see scriptStart).
func (s *Store) Start(ctx context.Context, id string) (Result, error) {
	res, err := s.run(ctx, scriptStart, append([]any{s.keys.Stats(id), s.Now(), s.ttlOf(job.Stopped)}, s.changeArgs()...)...)
	if err != nil {
		return Result{}, fmt.Errorf("store: start job %s: %w", id, err)
	}
	switch res[0] {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "refused":
		return Result{Outcome: Refused, Current: job.Status(res[1])}, nil
	case "ok", "stopped":
		if len(res) != 5 {
			break
		}
		rev, err := strconv.ParseInt(res[1], 10, 64)
		if err != nil {
			break
		}
		r := Result{Outcome: Moved, OP: job.Action(res[4]), Params: []byte(res[2]),
			Stats: &job.Stats{ID: id, Status: job.Running, Revision: rev, UpstreamJobID: res[3]}}
		if res[0] == "stopped" {
			r.Outcome, r.Stats.Status = StoppedOnStart, job.Stopped
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("store: start job %s: unexpected reply %q", id, res)
}

// Fields are fields to set (or, with an empty value, delete) along with a
// status change.
type Fields map[string]string

// Field names callers may set.
const (
	FieldRetryAt = fRetryAt
	FieldDieAt   = fDieAt
)

// Move changes job id of revision rev to status to, by job.CanMove's rule,
// and applies the status's TTL.
func (s *Store) Move(ctx context.Context, id string, rev int64, to job.Status, fields Fields) (Result, error) {
	return s.move(ctx, id, strconv.FormatInt(rev, 10), to, fields, nil)
}

// Requeue starts a new revision of a job, Pending, and queues it again:
// a run that could not finish (host shutdown) runs again.
func (s *Store) Requeue(ctx context.Context, st *job.Stats) (Result, error) {
	return s.move(ctx, st.ID, "next", job.Pending, Fields{fRetryAt: "", fOPCommand: ""}, st)
}

func (s *Store) move(ctx context.Context, id, rev string, to job.Status, fields Fields, requeue *job.Stats) (Result, error) {
	keys := []any{s.keys.Stats(id)}
	mode, ent, name := "none", []byte(nil), ""
	if requeue != nil {
		var err error
		if ent, err = entry(requeue); err != nil {
			return Result{}, err
		}
		mode, name = "list", requeue.Name
		keys = append(keys, s.keys.Jobs(requeue.Name), s.keys.KnownJobs())
	}
	args := append([]any{len(keys)}, keys...)
	ttl := s.ttlOf(to)
	if fields[fRetryAt] != "" {
		// An Error waiting for its retry is not final: its stats must
		// outlive the wait, whatever error_ttl says.
		ttl = 0
	}
	args = append(args, string(to), rev, s.Now(), ttl, mode, ent, 0, name, s.keys.Doorbell(), s.keys.Timer(), len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	args = append(args, s.changeArgs()...)
	res, err := s.run(ctx, scriptMove, args...)
	if err != nil {
		return Result{}, fmt.Errorf("store: move job %s to %s: %w", id, to, err)
	}
	switch res[0] {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "refused":
		return Result{Outcome: Refused, Current: job.Status(res[1])}, nil
	case "ok", "same":
		if len(res) != 4 {
			break
		}
		rev, err := strconv.ParseInt(res[2], 10, 64)
		if err != nil {
			break
		}
		r := Result{Outcome: Moved, Stats: &job.Stats{ID: id, Status: job.Status(res[1]), Revision: rev}}
		if res[0] == "same" {
			r.Outcome = Same
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("store: move job %s to %s: unexpected reply %q", id, to, res)
}

// Checkin records the check-in of a running job of revision rev; Refused
// when the job is no longer running in that revision.
func (s *Store) Checkin(ctx context.Context, id string, rev int64, message string) (Result, error) {
	res, err := s.run(ctx, scriptCheckin, append([]any{s.keys.Stats(id), message, s.Now(), rev}, s.changeArgs()...)...)
	if err != nil {
		return Result{}, fmt.Errorf("store: check in job %s: %w", id, err)
	}
	return s.result("check in", id, res)
}

// StopOutcome is what a stop or cancel did.
type StopOutcome int

// Stop outcomes.
const (
	// StopDone: the job was queued and is now Stopped.
	StopDone StopOutcome = iota
	// StopSignalled: the job is running; its runner was signalled.
	StopSignalled
	// StopFinal: the job had already ended; nothing changed.
	StopFinal
)

// Stop stops (op stop) or cancels (op cancel) a job that is not a periodic
// policy; job.ErrNotFound when there is no such job.
func (s *Store) Stop(ctx context.Context, st *job.Stats, op job.Action) (StopOutcome, *job.Stats, error) {
	ent, err := entry(st)
	if err != nil {
		return 0, nil, err
	}
	unique := s.keys.Stats(st.ID)
	if st.Unique {
		if unique, err = s.keys.Unique(st.Name, nonNil(st.Parameters)); err != nil {
			return 0, nil, err
		}
	}
	args := []any{s.keys.Stats(st.ID), s.keys.Jobs(st.Name), s.keys.Scheduled(), s.keys.Retry(), unique,
		string(op), s.Now(), s.ttlOf(job.Stopped), ent, s.keys.Signals()}
	res, err := s.run(ctx, scriptStop, append(args, s.changeArgs()...)...)
	if err != nil {
		return 0, nil, fmt.Errorf("store: %s job %s: %w", op, st.ID, err)
	}
	switch res[0] {
	case "missing":
		return 0, nil, fmt.Errorf("%w: %s", job.ErrNotFound, st.ID)
	case "signalled":
		return StopSignalled, nil, nil
	case "final":
		return StopFinal, nil, nil
	case "stopped":
		rec, err := parseRecord(res[1:])
		if err != nil {
			return 0, nil, fmt.Errorf("store: %s job %s: %w", op, st.ID, err)
		}
		return StopDone, rec.stats, nil
	}
	return 0, nil, fmt.Errorf("store: %s job %s: unexpected reply %q", op, st.ID, res[0])
}

// OPCommands returns the operator requests recorded on the given jobs
// (stop or cancel; "" when none), in order.
func (s *Store) OPCommands(ctx context.Context, ids []string) ([]job.Action, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, id := range ids {
		if err := conn.Send("HGET", s.keys.Stats(id), fOPCommand); err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	out := make([]job.Action, len(ids))
	for i := range ids {
		v, err := redis.String(conn.Receive())
		if err != nil && !errors.Is(err, redis.ErrNil) {
			return nil, err
		}
		out[i] = job.Action(v)
	}
	return out, nil
}
