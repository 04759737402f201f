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
		return nil, job.BadRequest("Periodic jobs are not supported by this version of Berth yet")
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
	if req.Metadata.Kind == job.KindScheduled {
		st.Status, st.RunAt = job.Scheduled, now+int64(req.Metadata.ScheduleDelay)
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
	case job.ActionStop, job.ActionCancel:
	case job.ActionRetry:
		return fmt.Errorf("%w: retry is not supported by this version of Berth yet", job.ErrUnknownAction)
	default:
		return fmt.Errorf("%w: %q", job.ErrUnknownAction, action)
	}
	st, err := s.st.Get(ctx, id)
	if err != nil {
		return err
	}
	if st.Kind == job.Periodic {
		return job.BadRequest("Periodic jobs are not supported by this version of Berth yet")
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

// List is not implemented yet.
func (s *Service) List(context.Context, job.Query) (*job.Page, error) {
	return nil, errors.New("listing jobs is not supported by this version of Berth yet")
}

// Executions is not implemented yet.
func (s *Service) Executions(context.Context, string, job.Query) (*job.Page, error) {
	return nil, errors.New("listing executions is not supported by this version of Berth yet")
}

// WorkerPools lists the worker pools that share this Redis namespace.
func (s *Service) WorkerPools(ctx context.Context) ([]*job.WorkerPool, error) {
	return queue.Heartbeats(ctx, s.st.Pool(), s.st.Keys().WorkNamespace(), s.opts.HeartbeatStale, time.Now())
}

// Config returns the Redis pool configuration.
func (s *Service) Config() job.PoolConfig { return s.opts.Config }
