package jobs

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/host/internal/clock"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
)

// Plugins is what the lifecycle needs of the plugin host.
type Plugins interface {
	JobType(name string) (pluginhost.JobType, bool)
	JobTypes() []pluginhost.JobType
	Validate(ctx context.Context, name string, params []byte) error
}

// Runner runs attempts on this host.
type Runner interface {
	Reserve(id string) (release func(), ok bool)
	Run(ctx context.Context, a runner.Attempt) (runner.Outcome, error)
	Signal(id string, op job.Action)
	// Revoke gives the run of job id up at once: this host no longer
	// holds its lease (the attempt ends runner.LeaseLost). False when no
	// run was going (its outcome is being recorded).
	Revoke(id, why string) bool
	Running() []string
}

// Logs opens and reads job logs.
type Logs interface {
	Open(jobID string) (joblog.Logger, error)
	Get(ctx context.Context, jobID string, limit int64) ([]byte, error)
}

// Kicker starts a pass of the periodic scheduler.
type Kicker interface{ Kick() }

// DefaultMaxFails is the number of failed runs allowed to a job type that
// declares 0.
const DefaultMaxFails = 4

// Options configure a Controller.
type Options struct {
	Store   *store.Store
	Events  *events.Bus
	Plugins Plugins
	Runner  Runner
	Logs    Logs
	// Scheduler, when set, is kicked when a periodic policy is created so
	// that its first executions exist at once.
	Scheduler Kicker
	// Backlog, when set, hears how many entries were left in the queue of
	// a job as this host started it, when there were any (the worker
	// pool's Behind: a backlog wakes idle workers).
	Backlog func(waiting int)
	// Properties are handed to every job, beside the job's own (job_id,
	// job_name, revision, upstream_job_id).
	Properties map[string]string
	// Retry is the wait before a failed job runs again (defaults: 10s
	// doubling up to 10m, plus up to a quarter of jitter).
	Retry backoff.Policy
	// LogLimit bounds the bytes of a log read (max_retrieve_size_mb).
	LogLimit int64
	// Config is the answer of GET /api/v1/config.
	Config job.PoolConfig
	// HeartbeatStale marks a worker pool Dead (default 15s: three missed
	// gocraft/work heartbeats).
	HeartbeatStale time.Duration
	Clock          clock.Clock
	Logger         hclog.Logger
}

// Controller owns the life of jobs on this host.
type Controller struct {
	opts Options
	st   *store.Store
	log  hclog.Logger
	clk  clock.Clock

	base     context.Context // ends at shutdown
	shutdown context.CancelFunc
	leases   *keeper
	// startsFrom is when starts may go on (unix ns; HoldStarts).
	startsFrom atomic.Int64
}

// New returns a Controller.
func New(opts Options) *Controller {
	if opts.HeartbeatStale <= 0 {
		opts.HeartbeatStale = 15 * time.Second
	}
	if opts.Retry.Base <= 0 {
		opts.Retry.Base = 10 * time.Second
	}
	if opts.Retry.Max <= 0 {
		opts.Retry.Max = 10 * time.Minute
	}
	opts.Retry.Max = max(opts.Retry.Max, opts.Retry.Base)
	if opts.Retry.Jitter == 0 {
		opts.Retry.Jitter = 0.25
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Events == nil {
		opts.Events = events.New()
	}
	base, cancel := context.WithCancel(context.Background())
	c := &Controller{opts: opts, st: opts.Store, log: opts.Logger, clk: clock.Or(opts.Clock), base: base, shutdown: cancel}
	c.leases = newKeeper(c)
	return c
}

// SetScheduler sets the periodic scheduler to kick when a policy is
// created (it is built after the controller, which it calls).
func (c *Controller) SetScheduler(k Kicker) { c.opts.Scheduler = k }

// Events is the bus the controller publishes on.
func (c *Controller) Events() *events.Bus { return c.opts.Events }

// publish hands the store's events to the bus.
func (c *Controller) publish(evs []job.Event) { c.opts.Events.Publish(evs...) }

// Shutdown ends every running attempt; they are queued again in a new
// revision. Jobs that workers take after it are queued again at once.
func (c *Controller) Shutdown() { c.shutdown() }

// EntryBackoff is the wait before gocraft/work hands back a job that could
// not be handled at all (queue.Options.Backoff): the retry wait.
func (c *Controller) EntryBackoff(fails int64) time.Duration {
	return c.opts.Retry.Delay(int(fails))
}
