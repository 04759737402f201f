package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// Action stops, cancels or retries a job.
func (c *Controller) Action(ctx context.Context, id string, action job.Action) error {
	switch action {
	case job.ActionStop, job.ActionCancel, job.ActionRetry:
	default:
		return fmt.Errorf("%w: %q", job.ErrUnknownAction, action)
	}
	st, err := c.st.Get(ctx, id)
	if err != nil {
		return err
	}
	if action == job.ActionRetry {
		return c.retry(ctx, st)
	}
	if st.Kind == job.Periodic {
		_, evs, err := c.st.StopPolicy(ctx, id, action)
		c.publish(evs)
		return err
	}
	out, evs, err := c.st.Stop(ctx, st, action)
	if err != nil {
		return err
	}
	c.publish(evs)
	if out == store.StopSignalled {
		// The job may run here: do not wait for the pub/sub round trip.
		c.opts.Runner.Signal(id, action)
	}
	return nil
}

func (c *Controller) retry(ctx context.Context, st *job.Stats) error {
	if st.Kind == job.Periodic {
		return &job.StatusMismatchError{ID: st.ID, Action: job.ActionRetry, Status: st.Status}
	}
	res, err := c.st.Retry(ctx, st)
	if err != nil {
		return err
	}
	c.publish(res.Events)
	switch res.Outcome {
	case store.Missing:
		return fmt.Errorf("%w: %s", job.ErrNotFound, st.ID)
	case store.Refused:
		return &job.StatusMismatchError{ID: st.ID, Action: job.ActionRetry, Status: res.Current}
	}
	return nil
}

// Resync catches up on stop and cancel requests missed while the host was
// disconnected from Redis: it reads the requests recorded on the jobs
// running here and signals them (pubsub.Options.OnConnect).
func (c *Controller) Resync() {
	ids := c.opts.Runner.Running()
	ctx, cancel := context.WithTimeout(c.base, 10*time.Second)
	defer cancel()
	ops, err := c.st.OPCommands(ctx, ids)
	if err != nil {
		c.log.Warn("cannot read the stop requests of running jobs", "error", err)
		return
	}
	for i, op := range ops {
		if op != "" {
			c.opts.Runner.Signal(ids[i], op)
		}
	}
}
