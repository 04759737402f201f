package runner

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/sdk/proto"
)

// Plugins is what the runner needs of the plugin host.
type Plugins interface {
	JobType(name string) (pluginhost.JobType, bool)
	Run(ctx context.Context, req pluginhost.RunRequest) (pluginhost.RunResult, error)
	Signal(ctx context.Context, name, jobID string, cmd proto.OPCommand) (bool, error)
}

// Logs opens job logs.
type Logs interface {
	Open(jobID string) (joblog.Logger, error)
}

// Launcher submits a sub-job for a running job (the request is the JSON of
// a Harbor job request's "job" object) and returns its stats.
type Launcher func(ctx context.Context, parentID string, request []byte) (*job.Stats, error)

// Options configure a Runner.
type Options struct {
	Store *store.Store
	Logs  Logs
	// Properties are handed to every job.
	Properties map[string]string
	// JobTimeout bounds one attempt; 0 is none.
	JobTimeout time.Duration
	// StopGrace is how long a signalled job gets to return before its Run
	// call is cancelled (default 5s).
	StopGrace time.Duration
	// BackoffBase and BackoffMax shape the wait before a retry: base,
	// doubling with each failure, capped at max, plus up to a quarter of
	// jitter (defaults 10s and 10m).
	BackoffBase, BackoffMax time.Duration
	Logger                  hclog.Logger
}

// DefaultMaxFails is the number of failed runs allowed to a job type that
// declares 0.
const DefaultMaxFails = 4

// Runner runs jobs.
type Runner struct {
	opts     Options
	log      hclog.Logger
	plugins  Plugins
	launcher Launcher

	base     context.Context // ends at shutdown
	shutdown context.CancelFunc

	mu      sync.Mutex
	running map[string]*attempt
}

// attempt is one running attempt.
type attempt struct {
	id, name string
	rev      int64
	logger   joblog.Logger

	mu     sync.Mutex
	op     job.Action
	signal chan struct{} // closed on the first stop or cancel
	cancel context.CancelCauseFunc
}

// New returns a Runner. Bind gives it its plugins before the first job.
func New(opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 10 * time.Second
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = max(opts.BackoffBase, 10*time.Minute)
	}
	base, cancel := context.WithCancel(context.Background())
	return &Runner{opts: opts, log: opts.Logger, base: base, shutdown: cancel, running: map[string]*attempt{}}
}

// Bind sets the plugins the runner calls and the launcher of sub-jobs. The
// plugin host calls the runner back, so the two are built one after the
// other and bound here.
func (r *Runner) Bind(p Plugins, l Launcher) {
	r.plugins = p
	r.launcher = l
}

// errShutdown is the cause of attempts ended by the host's shutdown.
var errShutdown = errors.New("the host is shutting down")

// Shutdown ends every running attempt; they are queued again. New jobs
// given to Handle after it are queued again at once.
func (r *Runner) Shutdown() { r.shutdown() }

// Backoff is the wait before retrying a job that failed `fails` times.
func (r *Runner) Backoff(id string, fails int64) time.Duration {
	d := r.opts.BackoffBase
	for i := int64(1); i < fails && d < r.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.opts.BackoffMax)
	// The jitter is a function of the job and its failure count, so that
	// gocraft/work's retry time and the stats' retry_at agree.
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", id, fails)
	return d + time.Duration(h.Sum64()%uint64(d/4+1))
}

// Handle runs one attempt of a job a worker took. It returns an error only
// to have the job retried.
func (r *Runner) Handle(j queue.Job) error {
	ctx := r.base
	log := lazyLog{r.log, j}
	if ctx.Err() != nil {
		r.requeue(j.ID, log)
		return nil
	}
	jt, ok := r.plugins.JobType(j.Name)
	if !ok {
		log.Error("no plugin serves this job; dropping it")
		return nil
	}
	a := &attempt{id: j.ID, name: j.Name, signal: make(chan struct{})}
	if !r.register(a) {
		log.Error("this job is already running on this host; dropping the duplicate")
		return nil
	}
	defer r.unregister(a)

	res, err := r.opts.Store.Start(ctx, j.ID)
	if err != nil {
		// Redis is unreachable: let gocraft/work try again later.
		log.Error("cannot mark the job Running", "error", err)
		return err
	}
	switch res.Outcome {
	case store.Missing:
		log.Warn("the job has no stats (expired or never submitted through Berth); dropping it")
		return nil
	case store.Refused:
		log.Debug("the job is no longer runnable; dropping it", "status", res.Current)
		return nil
	case store.StoppedOnStart:
		log.Info("the job was asked to stop while its host died; it is Stopped")
		return nil
	}
	logger, err := r.opts.Logs.Open(j.ID)
	if err != nil {
		log.Error("cannot open the job log; the job runs without it", "error", err)
		logger = discard{}
	}
	defer logger.Close()
	a.mu.Lock()
	a.rev, a.logger = res.Stats.Revision, logger
	a.mu.Unlock()
	logger.Log(joblog.Debug, fmt.Sprintf("attempt %d of %s started (revision %d)", j.Fails+1, j.Name, a.rev))

	out := r.run(ctx, a, j, res)
	return r.finish(a, jt, j, out, log)
}

// outcome is how an attempt ended.
type outcome struct {
	err      string // empty on success
	op       job.Action
	shutdown bool
}

func (r *Runner) run(base context.Context, a *attempt, j queue.Job, started store.Result) outcome {
	ctx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	if r.opts.JobTimeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, r.opts.JobTimeout, fmt.Errorf("the job ran longer than job_timeout (%s)", r.opts.JobTimeout))
		defer stop()
	}
	a.mu.Lock()
	a.cancel = cancel
	a.mu.Unlock()

	// The parameters as submitted, verbatim: the stats keep Go's JSON of
	// them, while the queue entry may have been re-encoded by
	// gocraft/work's Lua (which turns an empty array into an object).
	params := started.Params
	props := make(map[string]string, len(r.opts.Properties)+4)
	for k, v := range r.opts.Properties {
		props[k] = v
	}
	props["job_id"], props["job_name"], props["revision"] = j.ID, j.Name, strconv.FormatInt(a.rev, 10)
	if up := started.Stats.UpstreamJobID; up != "" {
		props["upstream_job_id"] = up
	}

	// A stop or cancel is relayed to the plugin, which ends the job's
	// context; a job that does not return within StopGrace has its call
	// cancelled.
	relayDone := make(chan struct{})
	defer close(relayDone)
	go func() {
		select {
		case <-a.signal:
		case <-relayDone:
			return
		}
		cmd := proto.OPCommand_OP_COMMAND_STOP
		if a.opCommand() == job.ActionCancel {
			cmd = proto.OPCommand_OP_COMMAND_CANCEL
		}
		sctx, done := context.WithTimeout(ctx, r.opts.StopGrace)
		defer done()
		if _, err := r.plugins.Signal(sctx, a.name, a.id, cmd); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("could not signal the plugin; cancelling the call", "job_id", a.id, "error", err)
			}
			// Otherwise the run ended meanwhile: nothing to cancel.
			cancel(fmt.Errorf("job %s", a.opCommand()))
			return
		}
		select {
		case <-sctx.Done():
			cancel(fmt.Errorf("job %s and did not return within %s", a.opCommand(), r.opts.StopGrace))
		case <-relayDone:
		}
	}()

	res, err := r.plugins.Run(ctx, pluginhost.RunRequest{Name: j.Name, JobID: j.ID, Parameters: params, Properties: props})
	out := outcome{op: a.opCommand()}
	switch {
	case out.op != "":
	case base.Err() != nil:
		out.shutdown = true
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		out.err = context.Cause(ctx).Error()
	case err != nil:
		out.err = err.Error()
	case res.Err != "":
		out.err = res.Err
		if res.Panicked {
			out.err = "the job panicked: " + res.Err
		}
	}
	return out
}

// lazyLog adds the job to a log entry only when one is written: the
// common path of a job logs nothing and should not pay for it.
type lazyLog struct {
	l hclog.Logger
	j queue.Job
}

func (l lazyLog) with(args []any) []any {
	return append([]any{"job_id", l.j.ID, "job_name", l.j.Name}, args...)
}

func (l lazyLog) Debug(msg string, args ...any) { l.l.Debug(msg, l.with(args)...) }
func (l lazyLog) Info(msg string, args ...any)  { l.l.Info(msg, l.with(args)...) }
func (l lazyLog) Warn(msg string, args ...any)  { l.l.Warn(msg, l.with(args)...) }
func (l lazyLog) Error(msg string, args ...any) { l.l.Error(msg, l.with(args)...) }

// finish records how the attempt ended and decides on a retry.
func (r *Runner) finish(a *attempt, jt pluginhost.JobType, j queue.Job, out outcome, log lazyLog) error {
	// The attempt is over; record it even if the host is shutting down.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case out.op != "":
		a.logger.Log(joblog.Info, fmt.Sprintf("the job was asked to %s; it is Stopped", out.op))
		return r.move(ctx, a, job.Stopped, nil, log)
	case out.shutdown:
		a.logger.Log(joblog.Warning, "the host shut down during the run; the job is queued again")
		r.requeue(a.id, log)
		return nil
	case out.err == "":
		return r.move(ctx, a, job.Success, nil, log)
	}
	fails := j.Fails + 1
	maxFails := int64(jt.MaxFails)
	if maxFails == 0 {
		maxFails = DefaultMaxFails
	}
	retry := jt.ShouldRetry && fails < maxFails
	a.logger.Log(joblog.Error, fmt.Sprintf("attempt %d failed: %s", fails, out.err))
	if !retry {
		log.Info("job failed", "error", out.err, "fails", fails)
		return r.move(ctx, a, job.Error, nil, log)
	}
	delay := r.Backoff(a.id, fails)
	retryAt := time.Now().Add(delay).Unix()
	a.logger.Log(joblog.Info, fmt.Sprintf("retrying in %s (failure %d of at most %d)", delay.Round(time.Second), fails, maxFails))
	if err := r.move(ctx, a, job.Error, store.Fields{store.FieldRetryAt: strconv.FormatInt(retryAt, 10)}, log); err != nil {
		return err
	}
	// gocraft/work queues the retry after r.Backoff(id, fails).
	return errors.New(out.err)
}

func (r *Runner) move(ctx context.Context, a *attempt, to job.Status, f store.Fields, log lazyLog) error {
	res, err := r.opts.Store.Move(ctx, a.id, a.rev, to, f)
	if err != nil {
		log.Error("cannot record the end of the attempt", "status", to, "error", err)
		return nil
	}
	if res.Outcome == store.Refused {
		log.Warn("the end of the attempt was not recorded: the job moved on", "status", to, "current", res.Current)
	}
	return nil
}

// requeue queues a job again in a new revision; used at shutdown.
func (r *Runner) requeue(id string, log lazyLog) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := r.opts.Store.Get(ctx, id)
	if err != nil {
		log.Error("cannot queue the job again after shutdown", "error", err)
		return
	}
	if _, err := r.opts.Store.Requeue(ctx, st); err != nil {
		log.Error("cannot queue the job again after shutdown", "error", err)
	}
}

func (r *Runner) register(a *attempt) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.running[a.id]; dup {
		return false
	}
	r.running[a.id] = a
	return true
}

func (r *Runner) unregister(a *attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[a.id] == a {
		delete(r.running, a.id)
	}
}

func (r *Runner) lookup(id string) *attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// Running lists the IDs of the attempts running on this host.
func (r *Runner) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.running))
	for id := range r.running {
		ids = append(ids, id)
	}
	return ids
}

// Signal asks a job running on this host to stop or cancel; it does
// nothing when the job does not run here.
func (r *Runner) Signal(id string, op job.Action) {
	a := r.lookup(id)
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.op != "" {
		return
	}
	a.op = op
	close(a.signal)
}

// OnSignal handles a message of the signals channel ("<op> <id>").
func (r *Runner) OnSignal(payload string) {
	op, id, ok := cutSpace(payload)
	if !ok || (op != string(job.ActionStop) && op != string(job.ActionCancel)) {
		r.log.Warn("malformed signal message", "payload", payload)
		return
	}
	r.Signal(id, job.Action(op))
}

// Resync catches up on signals missed while the host was disconnected
// from Redis: it reads the requests recorded on the jobs running here.
func (r *Runner) Resync() {
	ids := r.Running()
	ctx, cancel := context.WithTimeout(r.base, 10*time.Second)
	defer cancel()
	ops, err := r.opts.Store.OPCommands(ctx, ids)
	if err != nil {
		r.log.Warn("cannot read the stop requests of running jobs", "error", err)
		return
	}
	for i, op := range ops {
		if op != "" {
			r.Signal(ids[i], op)
		}
	}
}

// started returns the revision and log of a started attempt (logger is
// nil before the start).
func (a *attempt) started() (int64, joblog.Logger) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rev, a.logger
}

func (a *attempt) opCommand() job.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.op
}

func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

type discard struct{}

func (discard) Log(joblog.Level, string) {}
func (discard) Close() error             { return nil }
