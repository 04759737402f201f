package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/period"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
)

// Plugins is what the service needs of the plugin host.
type Plugins interface {
	JobType(name string) (pluginhost.JobType, bool)
	JobTypes() []pluginhost.JobType
	Validate(ctx context.Context, name string, params []byte) error
}

// Signaller delivers stop and cancel requests to jobs running on this host.
type Signaller interface {
	Signal(id string, op job.Action)
}

// Kicker starts a pass of the periodic scheduler.
type Kicker interface{ Kick() }

// LogReader reads job logs.
type LogReader interface {
	Get(ctx context.Context, jobID string, limit int64) ([]byte, error)
}

// Options configure a Service.
type Options struct {
	Store   *store.Store
	Plugins Plugins
	Runner  Signaller
	Logs    LogReader
	// Scheduler, when set, is kicked when a periodic policy is created so
	// that its first executions exist at once.
	Scheduler Kicker
	// LogLimit bounds the bytes of a log read (max_retrieve_size_mb).
	LogLimit int64
	// Config is the answer of GET /api/v1/config.
	Config job.PoolConfig
	// HeartbeatStale marks a worker pool Dead (default 15s: three missed
	// gocraft/work heartbeats).
	HeartbeatStale time.Duration
}

// Service implements api.Backend.
type Service struct {
	opts Options
	st   *store.Store
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.HeartbeatStale <= 0 {
		opts.HeartbeatStale = 15 * time.Second
	}
	return &Service{opts: opts, st: opts.Store}
}

// Submit checks a job against its plugin and stores and queues it.
func (s *Service) Submit(ctx context.Context, req *job.RequestJob) (*job.Stats, error) {
	return s.submit(ctx, req, "")
}

func (s *Service) submit(ctx context.Context, req *job.RequestJob, upstream string) (*job.Stats, error) {
	if _, ok := s.opts.Plugins.JobType(req.Name); !ok {
		return nil, job.BadRequest(fmt.Sprintf("job name %q is unknown: this service runs %s", req.Name, s.names()))
	}
	if req.Metadata.Kind == job.Periodic {
		if upstream != "" {
			return nil, job.BadRequest("a job cannot launch a Periodic sub-job")
		}
		if _, err := period.Parse(req.Metadata.CronSpec); err != nil {
			return nil, job.BadRequest(fmt.Sprintf(`"job.metadata.cron_spec": %v`, err))
		}
	}
	if req.StatusHook != "" && !strings.HasPrefix(req.StatusHook, "http://") && !strings.HasPrefix(req.StatusHook, "https://") {
		return nil, job.BadRequest(fmt.Sprintf(`"job.status_hook" is %q: it must be an http:// or https:// URL`, req.StatusHook))
	}
	params, err := json.Marshal(req.Parameters)
	if err != nil {
		return nil, job.BadRequest(fmt.Sprintf(`"job.parameters" cannot be encoded: %v`, err))
	}
	if err := s.opts.Plugins.Validate(ctx, req.Name, params); err != nil {
		var verr *pluginhost.ValidationError
		if errors.As(err, &verr) {
			return nil, job.BadRequest(fmt.Sprintf("invalid parameters for job %s: %s", req.Name, verr.Reason))
		}
		return nil, fmt.Errorf("validate parameters of %s: %w", req.Name, err)
	}
	now := s.st.Now()
	st := &job.Stats{
		ID: job.NewID(), Name: req.Name, Kind: req.Metadata.Kind, Unique: req.Metadata.Unique,
		Status: job.Pending, EnqueueTime: now, UpdateTime: now, Revision: now,
		WebHookURL: req.StatusHook, Parameters: req.Parameters, UpstreamJobID: upstream,
	}
	st.RefLink = job.RefLink(st.ID)
	switch req.Metadata.Kind {
	case job.KindScheduled:
		st.Status, st.RunAt = job.Scheduled, now+int64(req.Metadata.ScheduleDelay)
	case job.Periodic:
		// Harbor's policies are Scheduled, never unique, and carry a
		// numeric ID (here: unique per policy, not the creation second).
		st.Status, st.Unique, st.CronSpec = job.Scheduled, false, req.Metadata.CronSpec
		st.NumericPolicyID = time.Now().UnixNano()
		if err := s.st.CreatePolicy(ctx, st); err != nil {
			return nil, err
		}
		if s.opts.Scheduler != nil {
			s.opts.Scheduler.Kick()
		}
		return st, nil
	}
	if err := s.st.Create(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Launch submits a sub-job of a running job (the runner's Launcher).
func (s *Service) Launch(ctx context.Context, parentID string, request []byte) (*job.Stats, error) {
	var req job.RequestJob
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, job.BadRequest(fmt.Sprintf("the sub-job request is not JSON: %v", err))
	}
	if err := req.Check(); err != nil {
		return nil, err
	}
	return s.submit(ctx, &req, parentID)
}

func (s *Service) names() string {
	var names []string
	for _, t := range s.opts.Plugins.JobTypes() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// Get returns a job's stats.
func (s *Service) Get(ctx context.Context, id string) (*job.Stats, error) {
	return s.st.Get(ctx, id)
}

// Action stops, cancels or retries a job.
func (s *Service) Action(ctx context.Context, id string, action job.Action) error {
	switch action {
	case job.ActionStop, job.ActionCancel, job.ActionRetry:
	default:
		return fmt.Errorf("%w: %q", job.ErrUnknownAction, action)
	}
	st, err := s.st.Get(ctx, id)
	if err != nil {
		return err
	}
	if action == job.ActionRetry {
		return s.retry(ctx, st)
	}
	if st.Kind == job.Periodic {
		_, err := s.st.StopPolicy(ctx, id, action)
		return err
	}
	out, _, err := s.st.Stop(ctx, st, action)
	if err != nil {
		return err
	}
	if out == store.StopSignalled {
		// The job may run here: do not wait for the pub/sub round trip.
		s.opts.Runner.Signal(id, action)
	}
	return nil
}

func (s *Service) retry(ctx context.Context, st *job.Stats) error {
	if st.Kind == job.Periodic {
		return &job.StatusMismatchError{ID: st.ID, Action: job.ActionRetry, Status: st.Status}
	}
	res, err := s.st.Retry(ctx, st)
	if err != nil {
		return err
	}
	switch res.Outcome {
	case store.Missing:
		return fmt.Errorf("%w: %s", job.ErrNotFound, st.ID)
	case store.Refused:
		return &job.StatusMismatchError{ID: st.ID, Action: job.ActionRetry, Status: res.Current}
	}
	return nil
}

// Log returns a job's log; a job that exists but has logged nothing has an
// empty log.
func (s *Service) Log(ctx context.Context, id string) ([]byte, error) {
	b, err := s.opts.Logs.Get(ctx, id, s.opts.LogLimit)
	if errors.Is(err, joblog.ErrNotFound) {
		if _, gerr := s.st.Get(ctx, id); gerr != nil {
			return nil, gerr
		}
		return []byte{}, nil
	}
	if errors.Is(err, joblog.ErrBadID) {
		return nil, job.BadRequest(err.Error())
	}
	return b, err
}

// List lists jobs: kind=Scheduled the jobs waiting for their run time
// (paged, with their total), kind=Periodic the active periodic policies,
// otherwise every job through a Redis SCAN cursor (Next-Cursor; no total).
func (s *Service) List(ctx context.Context, q job.Query) (*job.Page, error) {
	switch q.Kind {
	case job.KindScheduled:
		jobs, total, err := s.st.ListScheduled(ctx, q.PageNumber, q.PageSize)
		if err != nil {
			return nil, err
		}
		return &job.Page{Jobs: jobs, Total: total}, nil
	case job.Periodic:
		all, err := s.st.ListPolicies(ctx)
		if err != nil {
			return nil, err
		}
		return page(all, q), nil
	}
	jobs, next, err := s.st.Scan(ctx, q.Cursor, q.PageSize)
	if err != nil {
		return nil, err
	}
	if q.Kind != "" {
		kept := jobs[:0]
		for _, j := range jobs {
			if j.Kind == q.Kind {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	return &job.Page{Jobs: jobs, Total: -1, NextCursor: next}, nil
}

// Executions lists the executions of a periodic policy or the sub-jobs of
// a job, newest first; non_dead_only keeps those that have not ended.
func (s *Service) Executions(ctx context.Context, id string, q job.Query) (*job.Page, error) {
	st, err := s.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.Kind != job.Periodic {
		has, err := s.st.HasExecutions(ctx, id)
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, fmt.Errorf("%w: %s is a %s job and has launched no sub-job", job.ErrNotPeriodic, id, st.Kind)
		}
	}
	all, err := s.st.Executions(ctx, id)
	if err != nil {
		return nil, err
	}
	if q.NonDeadOnly {
		kept := all[:0]
		for _, e := range all {
			if !e.Status.Final() {
				kept = append(kept, e)
			}
		}
		all = kept
	}
	return page(all, q), nil
}

// page cuts page q.PageNumber out of all.
func page(all []*job.Stats, q job.Query) *job.Page {
	p := &job.Page{Total: int64(len(all)), Jobs: []*job.Stats{}}
	start := (q.PageNumber - 1) * q.PageSize
	if q.PageNumber < 1 || q.PageSize < 1 || start >= len(all) {
		return p
	}
	p.Jobs = all[start:min(start+q.PageSize, len(all))]
	return p
}

// WorkerPools lists the worker pools that share this Redis namespace.
func (s *Service) WorkerPools(ctx context.Context) ([]*job.WorkerPool, error) {
	return queue.Heartbeats(ctx, s.st.Pool(), s.st.Keys().WorkNamespace(), s.opts.HeartbeatStale, time.Now())
}

// Config returns the Redis pool configuration.
func (s *Service) Config() job.PoolConfig { return s.opts.Config }
