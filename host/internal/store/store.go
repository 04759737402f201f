package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	acks    int           // replicas each change waits for
	ackWait time.Duration // at most this long
	pool    *redis.Pool
	keys    Keys
	ttl     TTLs
	now     func() time.Time
	execCap int
	hookCap int
	claim   time.Duration
	holder  string
	lease   time.Duration

	journal *journal // nil unless Options.Journal

	knownMu sync.Mutex
	knownAt map[string]time.Time // when this store last added a name to known_jobs
}

// knownFor is how long a name this store added to known_jobs is not added
// again (gocraft/work's enqueuer does the same); worker pools add theirs
// when they start.
const knownFor = 5 * time.Minute

// known is the known_jobs key when name should be added to it, else
// self (the script's first key, which tells it to skip the SADD).
func (s *Store) known(name, self string) string {
	now := s.now()
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	if at, ok := s.knownAt[name]; ok && now.Sub(at) < knownFor {
		return self
	}
	if s.knownAt == nil {
		s.knownAt = map[string]time.Time{}
	}
	s.knownAt[name] = now
	return s.keys.KnownJobs()
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
	// UniqueTTL is how long the claim of a unique job outlives its last
	// sign of life (submission, start, check-in, status change; for a job
	// waiting for its run time, that time), so that the claim of a lost
	// job expires (default 24h, gocraft/work's). It should exceed the
	// longest silence of a running job the reaper allows.
	UniqueTTL time.Duration
	// Holder names this host in the leases of the jobs it runs (default: a
	// random name, new with every Store).
	Holder string
	// Lease is how long the lease a start takes lasts; the host running the
	// job renews it (RenewLeases), and a running job whose lease expired is
	// recovered (RecoverLease). Default DefaultLease.
	Lease time.Duration
	// ReplicaAcks, when above 0, makes every change wait (Redis WAIT, at
	// most ReplicaTimeout, default 1s) until that many replicas hold it;
	// a change not confirmed in time fails with a *NotReplicatedError.
	ReplicaAcks    int
	ReplicaTimeout time.Duration
	// Journal keeps the creations of the last JournalFor, for Replay after
	// a failover.
	Journal bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NotReplicatedError is a change that Redis applied but fewer replicas
// than Options.ReplicaAcks confirmed in time: a failover could lose it.
// It is transient: the change is safe to make again.
type NotReplicatedError struct{ Want, Got int }

func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("store: %d of the %d Redis replicas asked for confirmed the change in time: a failover could lose it", e.Got, e.Want)
}

// DefaultLease is the default of Options.Lease.
const DefaultLease = 30 * time.Second

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
	if opts.UniqueTTL < time.Second {
		opts.UniqueTTL = DefaultUniqueTTL
	}
	if opts.Holder == "" {
		opts.Holder = job.NewID()
	}
	if opts.Lease < time.Second {
		opts.Lease = DefaultLease
	}
	if opts.ReplicaTimeout <= 0 {
		opts.ReplicaTimeout = time.Second
	}
	s := &Store{acks: opts.ReplicaAcks, ackWait: opts.ReplicaTimeout, pool: pool, keys: NewKeys(opts.Namespace), ttl: opts.TTL, now: opts.Now,
		execCap: opts.MaxExecutions, hookCap: opts.MaxHookCheckIns, claim: opts.UniqueTTL,
		holder: opts.Holder, lease: opts.Lease}
	if opts.Journal {
		s.journal = &journal{}
	}
	return s
}

// DefaultUniqueTTL is the default of Options.UniqueTTL: gocraft/work's 24
// hours, counted from a unique job's last sign of life.
const DefaultUniqueTTL = 24 * time.Hour

// env is the environment every script that changes a job takes as its
// first envArgs ARGV (see luaPrelude), at now.
func (s *Store) env(now time.Time) []any {
	return []any{now.UnixMilli(), s.keys.StatsPrefix(), s.keys.ExecutionsPrefix(), s.execCap, s.keys.IndexPrefix(),
		s.keys.HookEventsPrefix(), s.keys.HooksDue(), s.keys.Hooks(), s.hookCap,
		secs(s.ttl.Success), secs(s.ttl.Stopped), secs(s.ttl.Error), secs(s.claim),
		s.keys.Leases(), s.keys.LeaseHolders()}
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// Keys returns the keys of the store's namespace.
func (s *Store) Keys() Keys { return s.keys }

// Pool returns the Redis pool.
func (s *Store) Pool() *redis.Pool { return s.pool }

// Now is the store's clock in unix seconds.
func (s *Store) Now() int64 { return s.now().Unix() }

// Clock is the store's clock.
func (s *Store) Clock() time.Time { return s.now() }

// run runs a script that takes no environment and answers strings.
func (s *Store) run(ctx context.Context, script *redis.Script, keysAndArgs ...any) ([]string, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return redis.Strings(script.DoContext(ctx, conn, keysAndArgs...))
}

// answer is what a script that changes jobs answered: {tag, values,
// events}.
type answer struct {
	tag    string
	values []string
	events []job.Event
}

// change runs script with the environment, numKeys keys and then args.
func (s *Store) change(ctx context.Context, script *redis.Script, keys []any, args ...any) (answer, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	all := make([]any, 0, len(keys)+envArgs+len(args))
	all = append(all, keys...)
	all = append(all, s.env(s.now())...)
	all = append(all, args...)
	reply, err := redis.Values(script.DoContext(ctx, conn, all...))
	if err != nil {
		return answer{}, err
	}
	if s.acks > 0 {
		n, err := redis.Int(redis.DoContext(conn, ctx, "WAIT", s.acks, s.ackWait.Milliseconds()))
		if err != nil {
			return answer{}, fmt.Errorf("store: wait for the replicas: %w", err)
		}
		if n < s.acks {
			return answer{}, &NotReplicatedError{Want: s.acks, Got: n}
		}
	}
	return decodeAnswer(reply)
}

func decodeAnswer(reply []any) (answer, error) {
	if len(reply) != 3 {
		return answer{}, fmt.Errorf("unexpected reply of %d items", len(reply))
	}
	tag, err := redis.String(reply[0], nil)
	if err != nil {
		return answer{}, err
	}
	values, err := redis.Strings(reply[1], nil)
	if err != nil {
		return answer{}, err
	}
	events, err := decodeEvents(reply[2])
	if err != nil {
		return answer{}, err
	}
	return answer{tag: tag, values: values, events: events}, nil
}

// decodeEvents decodes the events of a script (the Lua function event).
func decodeEvents(v any) ([]job.Event, error) {
	raw, err := redis.Values(v, nil)
	if err != nil {
		return nil, err
	}
	out := make([]job.Event, 0, len(raw))
	for _, r := range raw {
		f, err := redis.Strings(r, nil)
		if err != nil || len(f) != 13 {
			return nil, fmt.Errorf("malformed event %q", f)
		}
		num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
		out = append(out, job.Event{
			JobID: f[0], Name: f[1], Kind: job.Kind(f[2]), From: job.Status(f[3]), To: job.Status(f[4]),
			FromRevision: num(f[5]), Revision: num(f[6]), Time: time.UnixMilli(num(f[7])),
			Reason: job.Reason(f[8]), CheckIn: f[9], RetryAt: num(f[10]), UpstreamJobID: f[11], Announced: f[12] == "1",
		})
	}
	return out, nil
}

// withDetail sets the detail of events.
func withDetail(evs []job.Event, detail string) []job.Event {
	if detail != "" {
		for i := range evs {
			evs[i].Detail = detail
		}
	}
	return evs
}

// ttlOf is the TTL in seconds of a job in status st (0: none).
func (s *Store) ttlOf(st job.Status) int64 {
	switch st {
	case job.Success:
		return secs(s.ttl.Success)
	case job.Stopped:
		return secs(s.ttl.Stopped)
	case job.Error:
		return secs(s.ttl.Error)
	}
	return 0
}

// Create stores the stats of a new job and makes it visible to workers in
// the same step: a Generic job is queued, a Scheduled one waits for RunAt.
// A unique job takes its claim (Keys.Unique), which it holds until its
// final status; a unique job whose claim another job holds (Pending,
// Scheduled, Running or waiting for a retry) is refused with
// *job.ConflictError naming that job. A job with an UpstreamJobID becomes
// one of its parent's executions.
func (s *Store) Create(ctx context.Context, st *job.Stats) ([]job.Event, error) {
	fields, err := statsArgs(st)
	if err != nil {
		return nil, err
	}
	mode, target := "list", s.keys.Jobs(st.Name)
	if st.Status == job.Scheduled {
		mode, target = "zset", s.keys.Scheduled()
	}
	ent, err := entry(st)
	if err != nil {
		return nil, err
	}
	statsKey := s.keys.Stats(st.ID)
	unique, uniqueKey := "0", statsKey
	if st.Unique {
		if uniqueKey, err = s.keys.Unique(st.Name, nonNil(st.Parameters)); err != nil {
			return nil, err
		}
		unique = "1"
		fields = append(fields, fUniqueKey, uniqueKey)
	}
	link, parentKey := "0", statsKey
	if st.UpstreamJobID != "" {
		link, parentKey = "1", s.keys.Executions(st.UpstreamJobID)
	}
	keys := []any{statsKey, target, s.known(st.Name, statsKey), uniqueKey, parentKey}
	args := append([]any{mode, ent, st.RunAt, st.Name, st.ID, s.keys.Doorbell(), s.keys.Timer(), unique, link, linkScore(st)}, fields...)
	a, err := s.journaled(ctx, st.ID, scriptCreate, keys, args...)
	if err != nil {
		return nil, fmt.Errorf("store: create job %s: %w", st.ID, err)
	}
	switch a.tag {
	case "ok":
		return a.events, nil
	case "dup":
		return nil, &job.ConflictError{Name: st.Name, ExistingID: first(a.values)}
	}
	return nil, fmt.Errorf("store: create job %s: unexpected reply %q", st.ID, a.tag)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
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
	// Skipped: a unique job whose claim another job holds (that job has
	// not ended) ended Stopped instead of starting; Holder names that job.
	Skipped
	// Leased: the job runs on another host, whose lease on it has not
	// expired; nothing changed. Holder names that host's lease holder.
	Leased
)

// ReasonSkipped is the reason of the event of a skipped start (Skipped).
const ReasonSkipped job.Reason = "skipped"

// Result of a change.
type Result struct {
	Outcome Outcome
	// Stats after the change (nil when Refused or Missing): only ID,
	// Status, Revision and, for Start, UpstreamJobID, for Checkin CheckIn
	// and CheckInAt. These are the hot path of every job.
	Stats *job.Stats
	// Params is the JSON of the job's parameters, as stored (Start only).
	Params []byte
	// Current is the status found when Refused.
	Current job.Status
	// OP is the operator's request recorded on the job (stop or cancel).
	OP job.Action
	// Snoozes is how often the job snoozed since it was queued (Start).
	Snoozes int
	// Holder is the job that holds the claim of a Skipped job, or the
	// lease holder of a Leased one.
	Holder string
	// Waiting is how many entries were left in the job's queue as it
	// started (Start, Moved): a backlog that idle workers should take.
	Waiting int
	// Events are the changes made, in order.
	Events []job.Event
}

// Start moves a job that a worker took to Running, taking its lease for
// this store's holder (see scriptStart); Leased when another host's lease
// on the job has not expired.
func (s *Store) Start(ctx context.Context, id string) (Result, error) {
	a, err := s.change(ctx, scriptStart, []any{s.keys.Stats(id)}, s.holder, s.lease.Milliseconds(), s.keys.JobsPrefix())
	if err != nil {
		return Result{}, fmt.Errorf("store: start job %s: %w", id, err)
	}
	switch a.tag {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "leased":
		return Result{Outcome: Leased, Current: job.Running, Holder: first(a.values)}, nil
	case "refused":
		return Result{Outcome: Refused, Current: job.Status(first(a.values))}, nil
	case "ok", "stopped", "skipped":
		if len(a.values) < 5 {
			break
		}
		rev, err := strconv.ParseInt(a.values[0], 10, 64)
		if err != nil {
			break
		}
		snoozes, _ := strconv.Atoi(a.values[4])
		r := Result{Outcome: Moved, OP: job.Action(a.values[3]), Params: []byte(a.values[1]), Events: a.events, Snoozes: snoozes,
			Stats: &job.Stats{ID: id, Status: job.Running, Revision: rev, UpstreamJobID: a.values[2]}}
		switch a.tag {
		case "ok":
			if len(a.values) > 5 {
				r.Waiting, _ = strconv.Atoi(a.values[5])
			}
		case "stopped":
			r.Outcome, r.Stats.Status = StoppedOnStart, job.Stopped
		case "skipped":
			r.Outcome, r.Stats.Status, r.OP, r.Holder = Skipped, job.Stopped, "", a.values[len(a.values)-1]
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("store: start job %s: unexpected reply %q %q", id, a.tag, a.values)
}

// Fields are fields to set along with a status change.
type Fields map[string]string

// Field names callers may set.
const (
	FieldDieAt   = fDieAt
	FieldOutput  = fOutput
	FieldSnoozes = fSnoozes
	FieldRunAt   = fRunAt
)

// Change is a status change asked of Move.
type Change struct {
	ID string
	// Revision is the revision the change applies to; with Next, the
	// change starts a new revision instead.
	Revision int64
	Next     bool
	To       job.Status
	Reason   job.Reason
	// Detail goes into the events (a failed run's error); it is not
	// stored.
	Detail string
	Set    Fields
	Delete []string
	// RetryAt, for an Error, makes the job wait for a retry at that unix
	// second: Retry is its entry, put in gocraft/work's retry set.
	RetryAt int64
	Retry   *Entry
	// Queue, for a Pending, queues the job again with this entry.
	Queue *Entry
	// Schedule, for a Scheduled (a snooze), puts this entry in the
	// scheduled set at RunAt.
	Schedule *Entry
	RunAt    int64
}

// Move changes a job's status by job.CanMove's rule (see Change) and
// applies the status's TTL. A running job asked to stop or cancel ends
// Stopped instead of waiting for a retry, snoozing or being queued again
// (its run ended before it heard the stop): Result.Stats.Status says so.
func (s *Store) Move(ctx context.Context, c Change) (Result, error) {
	statsKey := s.keys.Stats(c.ID)
	keys := []any{statsKey, statsKey, statsKey}
	mode, score, name := "none", int64(0), ""
	var e *Entry
	switch {
	case c.Queue != nil:
		mode, name, e = "list", c.Queue.Name, c.Queue
		keys[1], keys[2] = s.keys.Jobs(name), s.known(name, statsKey)
	case c.Retry != nil:
		mode, name, score, e = "zset", c.Retry.Name, c.RetryAt, c.Retry
		keys[1], keys[2] = s.keys.Retry(), s.known(name, statsKey)
	case c.Schedule != nil:
		mode, name, score, e = "zset", c.Schedule.Name, c.RunAt, c.Schedule
		keys[1], keys[2] = s.keys.Scheduled(), s.known(name, statsKey)
	}
	var ent []byte
	if e != nil {
		var err error
		if ent, err = e.bytes(); err != nil {
			return Result{}, err
		}
	}
	rev := strconv.FormatInt(c.Revision, 10)
	if c.Next {
		rev = "next"
	}
	set := make([]any, 0, 2*len(c.Set)+2)
	for k, v := range c.Set {
		set = append(set, k, v)
	}
	if c.RetryAt > 0 {
		set = append(set, fRetryAt, strconv.FormatInt(c.RetryAt, 10))
	}
	when := c.RetryAt
	if c.Schedule != nil {
		when = c.RunAt
	}
	args := []any{string(c.To), rev, string(c.Reason), when, mode, ent, score, name, s.keys.Doorbell(), s.keys.Timer(), len(set) / 2}
	args = append(args, set...)
	for _, f := range c.Delete {
		args = append(args, f)
	}
	a, err := s.change(ctx, scriptMove, keys, args...)
	if err != nil {
		return Result{}, fmt.Errorf("store: move job %s to %s: %w", c.ID, c.To, err)
	}
	switch a.tag {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "refused":
		return Result{Outcome: Refused, Current: job.Status(first(a.values))}, nil
	case "ok", "same":
		if len(a.values) != 2 {
			break
		}
		rev, err := strconv.ParseInt(a.values[1], 10, 64)
		if err != nil {
			break
		}
		r := Result{Outcome: Moved, Stats: &job.Stats{ID: c.ID, Status: job.Status(a.values[0]), Revision: rev},
			Events: withDetail(a.events, c.Detail)}
		if a.tag == "same" {
			r.Outcome = Same
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("store: move job %s to %s: unexpected reply %q %q", c.ID, c.To, a.tag, a.values)
}

// Requeue starts a new revision of a job, Pending, and queues it again:
// a run that could not finish (host shutdown) runs again.
func (s *Store) Requeue(ctx context.Context, st *job.Stats) (Result, error) {
	e, err := entryOf(st)
	if err != nil {
		return Result{}, err
	}
	return s.Move(ctx, Change{ID: st.ID, Next: true, To: job.Pending, Reason: job.Requeued,
		Delete: []string{fRetryAt, fOPCommand}, Queue: e})
}

// Checkin records check-ins of a running job of revision rev, in order,
// in one step (each its own event); Refused when the job is no longer
// running in that revision. The stats keep the last message.
func (s *Store) Checkin(ctx context.Context, id string, rev int64, messages ...string) (Result, error) {
	if len(messages) == 0 {
		return Result{}, fmt.Errorf("store: check in job %s: no message", id)
	}
	args := make([]any, 0, 1+len(messages))
	args = append(args, rev)
	for _, m := range messages {
		args = append(args, m)
	}
	a, err := s.change(ctx, scriptCheckin, []any{s.keys.Stats(id)}, args...)
	if err != nil {
		return Result{}, fmt.Errorf("store: check in job %s: %w", id, err)
	}
	switch a.tag {
	case "missing":
		return Result{Outcome: Missing}, nil
	case "refused":
		return Result{Outcome: Refused, Current: job.Status(first(a.values))}, nil
	case "ok":
		at, err := strconv.ParseInt(first(a.values), 10, 64)
		if err != nil {
			break
		}
		return Result{Outcome: Moved, Events: a.events,
			Stats: &job.Stats{ID: id, Status: job.Running, Revision: rev, CheckIn: messages[len(messages)-1], CheckInAt: at}}, nil
	}
	return Result{}, fmt.Errorf("store: check in job %s: unexpected reply %q %q", id, a.tag, a.values)
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
func (s *Store) Stop(ctx context.Context, st *job.Stats, op job.Action) (StopOutcome, []job.Event, error) {
	ent, err := entry(st)
	if err != nil {
		return 0, nil, err
	}
	keys := []any{s.keys.Stats(st.ID), s.keys.Jobs(st.Name), s.keys.Scheduled(), s.keys.Retry()}
	a, err := s.change(ctx, scriptStop, keys, string(op), ent, s.keys.Signals())
	if err != nil {
		return 0, nil, fmt.Errorf("store: %s job %s: %w", op, st.ID, err)
	}
	switch a.tag {
	case "missing":
		return 0, nil, fmt.Errorf("%w: %s", job.ErrNotFound, st.ID)
	case "signalled":
		return StopSignalled, nil, nil
	case "final":
		return StopFinal, nil, nil
	case "stopped":
		return StopDone, a.events, nil
	}
	return 0, nil, fmt.Errorf("store: %s job %s: unexpected reply %q", op, st.ID, a.tag)
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
