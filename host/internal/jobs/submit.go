package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/periodic"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/store"
)

// Submit checks a job against its plugin and stores and queues it.
func (c *Controller) Submit(ctx context.Context, req *job.RequestJob) (*job.Stats, error) {
	return c.submit(ctx, req, "")
}

// Launch submits a sub-job of a running job (runner.Reporter).
func (c *Controller) Launch(ctx context.Context, parentID string, request []byte) (*job.Stats, error) {
	var req job.RequestJob
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, job.BadRequest(fmt.Sprintf("the sub-job request is not JSON: %v", err))
	}
	if err := job.Check(&req); err != nil {
		return nil, err
	}
	return c.submit(ctx, &req, parentID)
}

func (c *Controller) submit(ctx context.Context, req *job.RequestJob, upstream string) (*job.Stats, error) {
	if _, ok := c.opts.Plugins.JobType(req.Name); !ok {
		return nil, job.BadRequest(c.unknownJob(req.Name))
	}
	if req.Metadata.Kind == job.Periodic {
		if upstream != "" {
			return nil, job.BadRequest("a job cannot launch a Periodic sub-job")
		}
		if _, err := periodic.Parse(req.Metadata.CronSpec); err != nil {
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
	if err := c.opts.Plugins.Validate(ctx, req.Name, params); err != nil {
		var verr *pluginhost.ValidationError
		if errors.As(err, &verr) {
			return nil, job.BadRequest(fmt.Sprintf("invalid parameters for job %s: %s", req.Name, verr.Reason))
		}
		return nil, fmt.Errorf("validate parameters of %s: %w", req.Name, err)
	}
	now := c.st.Now()
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
		// Harbor's policies are Scheduled and carry a numeric ID (here:
		// unique per policy, not the creation second). Harbor ignores
		// unique on a policy; in Berth, the executions of a unique policy
		// never run at once: one whose predecessor has not ended is
		// skipped (store.Skipped).
		st.Status, st.CronSpec = job.Scheduled, req.Metadata.CronSpec
		st.NumericPolicyID = c.clk.Now().UnixNano()
		evs, err := c.st.CreatePolicy(ctx, st)
		if err != nil {
			return nil, err
		}
		c.publish(evs)
		if c.opts.Scheduler != nil {
			c.opts.Scheduler.Kick()
		}
		return st, nil
	}
	evs, err := c.st.Create(ctx, st)
	if err != nil {
		return nil, err
	}
	c.publish(evs)
	return st, nil
}

func (c *Controller) names() string {
	var names []string
	for _, t := range c.opts.Plugins.JobTypes() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// CreateExecution creates the execution of periodic policy p at fire
// time t, once across every host (periodic.Executions).
func (c *Controller) CreateExecution(ctx context.Context, p *job.Stats, t int64) (store.ExecutionOutcome, error) {
	out, evs, err := c.st.CreateExecution(ctx, p, t)
	if err != nil {
		return 0, err
	}
	c.publish(evs)
	return out, nil
}
