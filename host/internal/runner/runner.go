package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/sdk/proto"
)

// Plugins is what the runner needs of the plugin host. A stop reaches the
// plugin through the run itself (RunRequest.Stop), so that it is told
// after the start whatever moment it came at.
type Plugins interface {
	Run(ctx context.Context, req pluginhost.RunRequest) (pluginhost.RunResult, error)
}

// Reporter takes what a running job reports: the lifecycle owner.
type Reporter interface {
	// Checkin records progress messages of a running attempt, in order.
	Checkin(ctx context.Context, id string, revision int64, messages ...string) error
	// Launch submits a sub-job of parentID from the JSON of a Harbor job
	// request's "job" object.
	Launch(ctx context.Context, parentID string, request []byte) (*job.Stats, error)
}

// Attempt is one run of a job, started by the lifecycle owner.
type Attempt struct {
	ID, Name string
	Revision int64
	// Number counts the attempts of this run of the job, from 1.
	Number int64
	// Deadline, when set, ends the attempt (job_timeout is applied on top).
	Deadline time.Time
	// Params is the JSON of the job's parameters.
	Params []byte
	// Properties are handed to the job.
	Properties map[string]string
	// Log is the job's log; the job's own lines go there.
	Log joblog.Logger
}

// Kind is how an attempt ended.
type Kind int

// Outcome kinds.
const (
	// Succeeded: the job's Run returned no error.
	Succeeded Kind = iota
	// Failed: the job failed (its error, a crash of its plugin, a panic,
	// the job timeout); the normal retry rules apply.
	Failed
	// FailedPermanently: the job failed in a way a retry cannot mend; it
	// is never retried.
	FailedPermanently
	// Snoozed: the job asks to run again after SnoozeFor, without counting
	// a failure.
	Snoozed
	// Stopped: the job was asked to stop or cancel (Outcome.Op) and ended.
	Stopped
	// Interrupted: the host shut down during the run.
	Interrupted
	// LeaseLost: the host gave the run up because it no longer holds the
	// job's lease (Runner.Revoke): the job may run elsewhere, and how this
	// run ended is not the job's status.
	LeaseLost
)

// Outcome is how an attempt ended.
type Outcome struct {
	Kind Kind
	// Err is why the attempt failed or snoozed.
	Err string
	// Op is the operator's request of a Stopped attempt.
	Op job.Action
	// Lost is why a LeaseLost attempt was given up.
	Lost string
	// Output is the JSON a successful attempt produced (nil: none).
	Output []byte
	// SnoozeFor is the wait a Snoozed attempt asked for.
	SnoozeFor time.Duration
}

// Options configure a Runner.
type Options struct {
	// JobTimeout bounds one attempt; 0 is none.
	JobTimeout time.Duration
	// StopGrace is how long a signalled job gets to return before its Run
	// call is cancelled (default 5s).
	StopGrace time.Duration
	Logger    hclog.Logger
}

// Runner runs attempts.
type Runner struct {
	opts     Options
	log      hclog.Logger
	plugins  Plugins
	reporter Reporter

	mu      sync.Mutex
	running map[string]*attempt
}

// attempt is one running attempt.
type attempt struct {
	Attempt
	mu     sync.Mutex
	op     job.Action
	lost   string        // why the run was given up (Revoke)
	over   bool          // Run returned
	signal chan struct{} // closed on the first stop, cancel or revoke
}

// New returns a Runner. Bind gives it its plugins and reporter before the
// first attempt.
func New(opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	return &Runner{opts: opts, log: opts.Logger, running: map[string]*attempt{}}
}

// Bind sets the plugins the runner calls and the reporter it reports to.
// The plugin host calls the runner back (Callbacks), so the three are
// built one after the other and bound here.
func (r *Runner) Bind(p Plugins, rep Reporter) {
	r.plugins = p
	r.reporter = rep
}

// Reserve registers job id as starting on this host before its attempt
// is started in the store, so that a second delivery of the same job to
// this host is refused (ok false) before it can touch the running one,
// and so that a stop that arrives before the run begins is kept: Run sees
// it at once. release unregisters the job; call it once the attempt is
// over (or was never run).
func (r *Runner) Reserve(id string) (release func(), ok bool) {
	a := &attempt{Attempt: Attempt{ID: id}, signal: make(chan struct{})}
	if !r.register(a) {
		return nil, false
	}
	return func() { r.unregister(a) }, true
}

// ErrNotReserved: Run was called for a job that Reserve did not register.
var ErrNotReserved = errors.New("runner: the job was not reserved on this host")

// Run runs an attempt, reserved with Reserve, to its end. ctx is the
// host's: when it ends (the host shuts down) the attempt is Interrupted.
func (r *Runner) Run(ctx context.Context, at Attempt) (Outcome, error) {
	a := r.lookup(at.ID)
	if a == nil {
		return Outcome{}, ErrNotReserved
	}
	a.mu.Lock()
	a.Attempt = at
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.over = true
		a.mu.Unlock()
	}()

	select {
	case <-a.signal:
		// Stopped (or given up) before the plugin had the job: it never
		// runs.
		out, _ := a.ended()
		return out, nil
	default:
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	deadline := at.Deadline
	if r.opts.JobTimeout > 0 {
		if d := time.Now().Add(r.opts.JobTimeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	if !deadline.IsZero() {
		var stop context.CancelFunc
		// The plugin ends the job at the deadline; the host gives it a
		// moment to say so before it gives up on the run.
		runCtx, stop = context.WithDeadlineCause(runCtx, deadline.Add(deadlineGrace),
			fmt.Errorf("the job ran longer than job_timeout (%s)", r.opts.JobTimeout))
		defer stop()
	}
	relayDone := make(chan struct{})
	defer close(relayDone)
	go r.relay(runCtx, cancel, a, relayDone)

	res, err := r.plugins.Run(runCtx, pluginhost.RunRequest{Name: at.Name, JobID: at.ID, Revision: at.Revision, Attempt: int(at.Number),
		Parameters: at.Params, Properties: at.Properties, Deadline: deadline, Stop: a.signal, StopReason: a.stopReason})
	out, ended := a.ended()
	if ended {
		return out, nil
	}
	switch {
	case ctx.Err() != nil:
		out.Kind = Interrupted
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		out.Kind, out.Err = Failed, context.Cause(runCtx).Error()
	case err != nil:
		out.Kind, out.Err = Failed, err.Error()
	case !deadline.IsZero() && time.Now().After(deadline) && res.Kind != pluginhost.RunSucceeded:
		// The plugin ended the job at its deadline.
		out.Kind, out.Err = Failed, fmt.Sprintf("the job ran longer than job_timeout (%s): %s", r.opts.JobTimeout, res.Err)
	default:
		out = outcomeOf(res)
	}
	return out, nil
}

// deadlineGrace is how long after its deadline a job has to end before
// the host gives up on its run.
const deadlineGrace = 2 * time.Second

// outcomeOf is the outcome of a run the plugin ended.
func outcomeOf(res pluginhost.RunResult) Outcome {
	switch res.Kind {
	case pluginhost.RunSucceeded:
		return Outcome{Kind: Succeeded, Output: res.Output}
	case pluginhost.RunFailedPermanently:
		return Outcome{Kind: FailedPermanently, Err: res.Err}
	case pluginhost.RunSnoozed:
		return Outcome{Kind: Snoozed, Err: res.Err, SnoozeFor: res.Snooze}
	}
	if res.Panicked {
		return Outcome{Kind: Failed, Err: "the job panicked: " + res.Err}
	}
	return Outcome{Kind: Failed, Err: res.Err}
}

// ended is the outcome of an attempt that was stopped, cancelled or given
// up (Stopped or LeaseLost); false when it was none of these.
func (a *attempt) ended() (Outcome, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.lost != "":
		return Outcome{Kind: LeaseLost, Lost: a.lost}, true
	case a.op != "":
		return Outcome{Kind: Stopped, Op: a.op}, true
	}
	return Outcome{}, false
}

// stopReason tells the plugin why its job must end.
func (a *attempt) stopReason() proto.StopReason {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.lost != "":
		return proto.StopReason_STOP_REASON_SHUTDOWN
	case a.op == job.ActionCancel:
		return proto.StopReason_STOP_REASON_CANCEL
	}
	return proto.StopReason_STOP_REASON_STOP
}

// relay bounds a run that was told to end (the plugin hears it through
// the run, RunRequest.Stop): a job that does not return within StopGrace
// has its call cancelled.
func (r *Runner) relay(ctx context.Context, cancel context.CancelCauseFunc, a *attempt, done <-chan struct{}) {
	select {
	case <-a.signal:
	case <-done:
		return
	}
	grace := time.NewTimer(r.opts.StopGrace)
	defer grace.Stop()
	select {
	case <-grace.C:
		why := fmt.Sprintf("job %s", a.opCommand())
		if lost := a.lostReason(); lost != "" {
			why = "the run was given up: " + lost
		}
		r.log.Warn("the job did not return within the stop grace; cancelling its call", "job_id", a.ID, "grace", r.opts.StopGrace)
		cancel(fmt.Errorf("%s and did not return within %s", why, r.opts.StopGrace))
	case <-done:
	case <-ctx.Done():
	}
}

func (r *Runner) register(a *attempt) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.running[a.ID]; dup {
		return false
	}
	r.running[a.ID] = a
	return true
}

func (r *Runner) unregister(a *attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[a.ID] == a {
		delete(r.running, a.ID)
	}
}

// started returns the attempt of a job whose run has begun (nil before).
func (r *Runner) started(id string) *Attempt {
	a := r.lookup(id)
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Log == nil {
		return nil
	}
	at := a.Attempt
	return &at
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
	if a.op != "" || a.lost != "" {
		return
	}
	a.op = op
	close(a.signal)
}

// Revoke gives up the run of job id on this host, at once, because the
// host no longer holds the job's lease (why says how it lost it): the
// plugin is told to end the job (as at a shutdown), its call is cancelled
// if it does not return within StopGrace, and the attempt ends LeaseLost
// whatever the job did. It answers whether it gave a run up: false when
// the job does not run here, its run is over (its outcome is being
// recorded) or was given up already.
func (r *Runner) Revoke(id, why string) bool {
	a := r.lookup(id)
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lost != "" || a.over {
		return false
	}
	a.lost = why
	if a.op == "" {
		close(a.signal)
	}
	return true
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

func (a *attempt) opCommand() job.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.op
}

func (a *attempt) lostReason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lost
}

func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
