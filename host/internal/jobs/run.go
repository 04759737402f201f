package jobs

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
)

// recordTimeout bounds one try at recording how an attempt ended; it
// outlives a shutdown.
const recordTimeout = 10 * time.Second

// recordBackoff is the wait between tries at recording how an attempt
// ended while Redis does not answer.
var recordBackoff = backoff.Policy{Base: 250 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.25}

// Handle runs one attempt of a job a worker took (the queue's Handler):
// it starts the attempt in the store, has the runner run it and records
// how it ended. It returns an error only when the job could not be
// handled at all (Redis unreachable at its start).
func (c *Controller) Handle(j queue.Job) error {
	log := lazyLog{c.log, j}
	if c.base.Err() != nil {
		c.requeue(j.ID, log)
		return nil
	}
	jt, ok := c.opts.Plugins.JobType(j.Name)
	if !ok {
		log.Error("no plugin serves this job; dropping it")
		return nil
	}
	release, ok := c.opts.Runner.Reserve(j.ID)
	if !ok {
		log.Error("this job is already running on this host; dropping the duplicate")
		return nil
	}
	defer release()

	sent := c.clk.Now()
	res, err := c.start(j.ID, log)
	if err != nil {
		log.Error("cannot mark the job Running", "error", err)
		return err
	}
	c.publish(res.Events)
	switch res.Outcome {
	case store.Leased:
		log.Debug("the job runs on another host, whose lease on it holds; dropping this delivery", "holder", res.Holder)
		return nil
	case store.Missing:
		log.Warn("the job has no stats (expired or never submitted through Berth); dropping it")
		return nil
	case store.Refused:
		log.Debug("the job is no longer runnable; dropping it", "status", res.Current)
		return nil
	case store.StoppedOnStart:
		log.Info("the job was asked to stop while its host died; it is Stopped")
		return nil
	case store.Skipped:
		log.Info("skipped: a unique job with the same name and parameters has not ended; this one is Stopped without running",
			"holder", res.Holder)
		return nil
	}
	if res.Waiting > 0 && c.opts.Backlog != nil {
		c.opts.Backlog(res.Waiting)
	}
	// The lease is kept until the outcome is recorded.
	defer c.leases.hold(j.ID, res.Stats.Revision, sent)()
	logger, err := c.opts.Logs.Open(j.ID)
	if err != nil {
		log.Error("cannot open the job log; the job runs without it", "error", err)
		logger = discard{}
	}
	defer logger.Close()
	a := runner.Attempt{ID: j.ID, Name: j.Name, Revision: res.Stats.Revision, Number: j.Fails + 1,
		Params: res.Params, Properties: c.properties(j, res.Stats), Log: logger}
	logger.Log(joblog.Debug, fmt.Sprintf("attempt %d of %s started (revision %d)", a.Number, j.Name, a.Revision))
	out, err := c.opts.Runner.Run(c.base, a)
	if err != nil {
		log.Error("the runner refused the attempt", "error", err)
		out = runner.Outcome{Kind: runner.Failed, Err: err.Error()}
	}
	c.finish(jt, j, a, res.Snoozes, out, log)
	return nil
}

// properties are what a job gets as its properties.
func (c *Controller) properties(j queue.Job, st *job.Stats) map[string]string {
	props := make(map[string]string, len(c.opts.Properties)+4)
	for k, v := range c.opts.Properties {
		props[k] = v
	}
	props["job_id"], props["job_name"], props["revision"] = j.ID, j.Name, strconv.FormatInt(st.Revision, 10)
	if st.UpstreamJobID != "" {
		props["upstream_job_id"] = st.UpstreamJobID
	}
	return props
}

// DefaultMaxSnoozes bounds the snoozes of a job type that declares 0.
const DefaultMaxSnoozes = 100

// finish records how an attempt ended and decides what comes next: a
// retry after a failure, a later run after a snooze. This is the one place
// that does.
func (c *Controller) finish(jt pluginhost.JobType, j queue.Job, a runner.Attempt, snoozes int, out runner.Outcome, log lazyLog) {
	ctx := context.Background()
	end := store.Change{ID: a.ID, Revision: a.Revision}
	switch out.Kind {
	case runner.LeaseLost:
		a.Log.Log(joblog.Warning, "this host gave the run up: "+out.Lost+"; the job runs again")
		leaseLost(log, out.Lost)
		return
	case runner.Stopped:
		a.Log.Log(joblog.Info, fmt.Sprintf("the job was asked to %s; it is Stopped", out.Op))
		end.To, end.Reason = job.Stopped, job.StopReason(out.Op)
	case runner.Interrupted:
		a.Log.Log(joblog.Warning, "the host shut down during the run; the job is queued again")
		c.requeue(a.ID, log)
		return
	case runner.Succeeded:
		end.To, end.Reason = job.Success, job.Succeeded
		if len(out.Output) > 0 {
			end.Set = store.Fields{store.FieldOutput: string(out.Output)}
		}
	case runner.Snoozed:
		c.snooze(ctx, jt, j, a, snoozes, out, log)
		return
	default:
		c.fail(ctx, jt, j, a, out.Err, out.Kind == runner.FailedPermanently, log)
		return
	}
	c.move(ctx, end, log)
}

// snooze records a run that asks to run again later: Scheduled, in a new
// revision, at the wait it asked for, with its failure count unchanged;
// past the job type's bound on snoozes, a failure.
func (c *Controller) snooze(ctx context.Context, jt pluginhost.JobType, j queue.Job, a runner.Attempt, snoozes int, out runner.Outcome, log lazyLog) {
	limit := int(jt.MaxSnoozes)
	if limit == 0 {
		limit = DefaultMaxSnoozes
	}
	if snoozes >= limit {
		c.fail(ctx, jt, j, a, fmt.Sprintf("the job snoozed %d times, the most allowed (last: %s)", snoozes, out.Err), true, log)
		return
	}
	at := ceilSecond(c.clk.Now().Add(out.SnoozeFor))
	a.Log.Log(joblog.Info, fmt.Sprintf("snoozing for %s (%d of at most %d): %s", out.SnoozeFor.Round(time.Second), snoozes+1, limit, out.Err))
	c.move(ctx, store.Change{ID: a.ID, Next: true, To: job.Scheduled, Reason: job.Snoozed, Detail: out.Err,
		Set:      store.Fields{store.FieldRunAt: strconv.FormatInt(at, 10), store.FieldSnoozes: strconv.Itoa(snoozes + 1)},
		Schedule: &store.Entry{Name: a.Name, ID: a.ID, EnqueuedAt: j.EnqueuedAt, Args: a.Params, Fails: j.Fails},
		RunAt:    at}, log)
}

// ceilSecond is t as a whole unix second, never before t: gocraft/work's
// sets are scored in seconds, and a job must not run early.
func ceilSecond(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// fail records a failed attempt: Error, and a retry when the job type
// allows one and the failure is not permanent.
func (c *Controller) fail(ctx context.Context, jt pluginhost.JobType, j queue.Job, a runner.Attempt, reason string, permanent bool, log lazyLog) {
	fails := a.Number
	maxFails := int64(jt.MaxFails)
	if maxFails == 0 {
		maxFails = DefaultMaxFails
	}
	a.Log.Log(joblog.Error, fmt.Sprintf("attempt %d failed: %s", fails, reason))
	end := store.Change{ID: a.ID, Revision: a.Revision, To: job.Error, Reason: job.Failed, Detail: reason}
	if permanent {
		a.Log.Log(joblog.Info, "the failure is permanent: the job is not retried")
	}
	if permanent || !jt.ShouldRetry || fails >= maxFails {
		log.Info("job failed", "error", reason, "fails", fails)
		c.move(ctx, end, log)
		return
	}
	now := c.clk.Now()
	delay := c.opts.Retry.Delay(int(fails))
	retryAt := ceilSecond(now.Add(delay))
	a.Log.Log(joblog.Info, fmt.Sprintf("retrying in %s (failure %d of at most %d)", delay.Round(time.Second), fails, maxFails))
	end.Reason, end.RetryAt = job.RetryWait, retryAt
	// The entry is not flagged unique (store.Entry.Unique): the job keeps
	// its claim through the wait and the retried run.
	end.Retry = &store.Entry{Name: a.Name, ID: a.ID, EnqueuedAt: j.EnqueuedAt, Args: a.Params,
		Fails: fails, Err: reason, FailedAt: now.Unix()}
	c.move(ctx, end, log)
}

// start marks the job Running. While Redis cannot be reached it tries
// again, with backoff, until Redis is back or the host shuts down: the
// worker holds the job's queue entry (in gocraft/work's in-progress list,
// which only a dead pool's entries leave), so giving up here would leave
// the job Pending with no entry anywhere.
func (c *Controller) start(id string, log lazyLog) (store.Result, error) {
	c.waitStarts()
	for try := 1; ; try++ {
		res, err := c.st.Start(c.base, id)
		if err == nil || !store.Transient(err) || c.base.Err() != nil {
			if err == nil && try > 1 {
				log.Info("the job is marked Running after Redis came back", "tries", try)
			}
			return res, err
		}
		wait := recordBackoff.Delay(try)
		if try == 1 || try%20 == 0 {
			log.Warn("cannot mark the job Running; trying again until Redis answers", "tries", try,
				"next_in", wait.Round(time.Millisecond), "error", err)
		}
		t := c.clk.NewTimer(wait)
		select {
		case <-t.C():
		case <-c.base.Done():
		}
		t.Stop()
	}
}

// HoldStarts makes the starts of the next d wait until d has passed (a
// later call may make the wait longer, never shorter). A host calls it when
// the Redis primary moved: the new primary may list, as waiting, a job
// another host started on the old one shortly before, and that host gives
// the run up only once it learns of the move too.
func (c *Controller) HoldStarts(d time.Duration) {
	until := c.clk.Now().Add(d).UnixNano()
	for {
		cur := c.startsFrom.Load()
		if cur >= until || c.startsFrom.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitStarts waits until starts may go on, or the host shuts down.
func (c *Controller) waitStarts() {
	wait := time.Unix(0, c.startsFrom.Load()).Sub(c.clk.Now())
	if wait <= 0 {
		return
	}
	t := c.clk.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C():
	case <-c.base.Done():
	}
}

// move records how an attempt ended and publishes it. While Redis does
// not answer it tries again, with backoff, until Redis is back: the
// outcome waits here, on the attempt's own worker, and the attempt keeps
// its lease meanwhile, so that nobody runs the job again. It gives up only
// once the host shuts down (after one more try); the job's lease then
// expires and another host runs it again.
func (c *Controller) move(ctx context.Context, ch store.Change, log lazyLog) {
	var res store.Result
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, recordTimeout)
		var err error
		res, err = c.st.Move(tctx, ch)
		cancel()
		if err == nil {
			if try > 1 {
				log.Info("the end of the attempt is recorded after Redis came back", "status", ch.To, "tries", try)
			}
			break
		}
		if c.base.Err() != nil {
			log.Error("cannot record the end of the attempt, and the host shuts down; the job runs again once its lease expires",
				"status", ch.To, "tries", try, "error", err)
			return
		}
		if !store.Transient(err) && try >= maxRecordTries {
			log.Error("cannot record the end of the attempt: Redis refuses it; the job runs again once its lease expires",
				"status", ch.To, "tries", try, "error", err)
			return
		}
		wait := recordBackoff.Delay(try)
		if try == 1 || try%20 == 0 {
			log.Warn("cannot record the end of the attempt; trying again until Redis answers", "status", ch.To, "tries", try,
				"next_in", wait.Round(time.Millisecond), "error", err)
		}
		t := c.clk.NewTimer(wait)
		select {
		case <-t.C():
		case <-c.base.Done():
		}
		t.Stop()
	}
	c.publish(res.Events)
	switch {
	case res.Outcome == store.Refused:
		log.Warn("the end of the attempt was not recorded: the job moved on", "status", ch.To, "current", res.Current)
	case res.Stats != nil && res.Stats.Status == job.Stopped && ch.To != job.Stopped:
		log.Info("the job was asked to stop as its run ended; it is Stopped", "instead_of", ch.To)
	}
}

// maxRecordTries bounds the tries at recording an outcome that Redis
// answers with an error that waiting does not mend.
const maxRecordTries = 3

// requeue queues a job again in a new revision; used at shutdown.
func (c *Controller) requeue(id string, log lazyLog) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	st, err := c.st.Get(ctx, id)
	if err != nil {
		log.Error("cannot queue the job again after shutdown", "error", err)
		return
	}
	res, err := c.st.Requeue(ctx, st)
	if err != nil {
		log.Error("cannot queue the job again after shutdown", "error", err)
		return
	}
	c.publish(res.Events)
}

// Checkin records progress messages of a running attempt, in order
// (runner.Reporter).
func (c *Controller) Checkin(ctx context.Context, id string, revision int64, messages ...string) error {
	res, err := c.st.Checkin(ctx, id, revision, messages...)
	if err != nil {
		return err
	}
	c.publish(res.Events)
	if res.Outcome != store.Moved {
		return fmt.Errorf("job %s is no longer running (status %s)", id, res.Current)
	}
	return nil
}

// FailStale marks Error the running jobs whose last progress (start or
// check-in) is older than maxSilence, and asks the host still running
// each one, if any, to stop it. It returns how many it failed.
func (c *Controller) FailStale(ctx context.Context, maxSilence time.Duration) (int, error) {
	names, err := c.st.KnownJobs(ctx)
	if err != nil {
		return 0, err
	}
	running, err := c.st.Running(ctx, names, 1000)
	if err != nil {
		return 0, err
	}
	now := c.clk.Now()
	before := now.Add(-maxSilence).Unix()
	failed := 0
	for _, r := range running {
		if r.UpdateTime >= before {
			continue
		}
		detail := fmt.Sprintf("no progress since %s, longer than reaper.max_job_duration (%s)",
			time.Unix(r.UpdateTime, 0).UTC().Format(time.RFC3339), maxSilence)
		res, err := c.st.Move(ctx, store.Change{ID: r.ID, Revision: r.Revision, To: job.Error, Reason: job.Stale, Detail: detail,
			Set: store.Fields{store.FieldDieAt: strconv.FormatInt(now.Unix(), 10)}})
		if err != nil {
			if ctx.Err() != nil {
				return failed, err
			}
			c.log.Warn("cannot mark a stale job Error", "job_id", r.ID, "error", err)
			continue
		}
		c.publish(res.Events)
		if res.Outcome != store.Moved {
			continue
		}
		failed++
		c.log.Warn("a running job showed no progress for longer than reaper.max_job_duration; it is marked Error",
			"job_id", r.ID, "last_progress", time.Unix(r.UpdateTime, 0).UTC(), "max_job_duration", maxSilence)
		c.opts.Runner.Signal(r.ID, job.ActionStop)
		if err := c.st.Signal(ctx, r.ID, string(job.ActionStop)); err != nil {
			c.log.Warn("cannot signal the host of a stale job", "job_id", r.ID, "error", err)
		}
	}
	return failed, nil
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

type discard struct{}

func (discard) Log(joblog.Level, string) {}
func (discard) Close() error             { return nil }
