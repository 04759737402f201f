package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
)

// Get returns a job's stats.
func (c *Controller) Get(ctx context.Context, id string) (*job.Stats, error) {
	return c.st.Get(ctx, id)
}

// Log returns a job's log; a job that exists but has logged nothing has an
// empty log. With logs kept per host (FILE), a job that has started but
// left no log here gets a line that says why it may be elsewhere.
func (c *Controller) Log(ctx context.Context, id string) ([]byte, error) {
	b, err := c.opts.Logs.Get(ctx, id, c.opts.LogLimit)
	if errors.Is(err, joblog.ErrNotFound) {
		st, gerr := c.st.Get(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		if local, ok := c.opts.Logs.(interface{ HostLocal() bool }); ok && local.HostLocal() && ran(st.Status) && !c.runsHere(ctx, st) {
			return []byte(fmt.Sprintf("%s [WARNING] berth: this host keeps no log of job %s: it logged nothing here, or it ran on "+
				"another host, whose FILE job logs this host cannot read; the REDIS job logger keeps every log readable from every host\n",
				c.clk.Now().UTC().Format("2006-01-02T15:04:05Z"), id)), nil
		}
		return []byte{}, nil
	}
	if errors.Is(err, joblog.ErrBadID) {
		return nil, job.BadRequest(err.Error())
	}
	return b, err
}

// runsHere tells whether this host runs job st now: a job that has just
// started here may not have logged its first line yet.
func (c *Controller) runsHere(ctx context.Context, st *job.Stats) bool {
	if st.Status != job.Running {
		return false
	}
	h, err := c.st.LeaseHolder(ctx, st.ID)
	return err == nil && h == c.st.Holder()
}

// ran tells whether a job of that status has run (a Stopped one may
// have been stopped before it ever started).
func ran(s job.Status) bool { return s == job.Running || s == job.Success || s == job.Error }

// List lists jobs: kind=Scheduled the jobs waiting for their run time
// (paged, with their total), kind=Periodic the active periodic policies,
// otherwise the jobs of the kind, status and name asked (newest first,
// through the listing indices, with a cursor: Next-Cursor; no total).
func (c *Controller) List(ctx context.Context, q job.Query) (*job.Page, error) {
	switch q.Kind {
	case job.KindScheduled:
		jobs, total, err := c.st.ListScheduled(ctx, q.PageNumber, q.PageSize)
		if err != nil {
			return nil, err
		}
		return &job.Page{Jobs: jobs, Total: total}, nil
	case job.Periodic:
		all, err := c.st.ListPolicies(ctx)
		if err != nil {
			return nil, err
		}
		return page(all, q), nil
	}
	var cursor int64
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, job.BadRequest(fmt.Sprintf(`query parameter "cursor" is %q: it must be the previous page's Next-Cursor`, q.Cursor))
		}
		cursor = n
	}
	f := store.Filter{Kind: q.Kind, Status: q.Status}
	if q.Name != "" {
		f.Names = []string{q.Name}
	}
	jobs, next, err := c.st.List(ctx, f, cursor, q.PageSize)
	if err != nil {
		return nil, err
	}
	return &job.Page{Jobs: jobs, Total: -1, NextCursor: strconv.FormatInt(next, 10)}, nil
}

// Executions lists the executions of a periodic policy or the sub-jobs of
// a job, newest first; non_dead_only keeps those that have not ended.
func (c *Controller) Executions(ctx context.Context, id string, q job.Query) (*job.Page, error) {
	st, err := c.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.Kind != job.Periodic {
		has, err := c.st.HasExecutions(ctx, id)
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, fmt.Errorf("%w: %s is a %s job and has launched no sub-job", job.ErrNotPeriodic, id, st.Kind)
		}
	}
	all, err := c.st.Executions(ctx, id)
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
func (c *Controller) WorkerPools(ctx context.Context) ([]*job.WorkerPool, error) {
	return queue.Heartbeats(ctx, c.st.Pool(), c.st.Keys().WorkNamespace(), c.opts.HeartbeatStale, c.clk.Now())
}

// Config returns the Redis pool configuration.
func (c *Controller) Config() job.PoolConfig { return c.opts.Config }
