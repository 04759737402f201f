package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/berth-dev/berth/sdk"
)

// Params are a SCHEDULER job's parameters: any JSON object, kept as it
// decodes (numbers as float64), since what the job checks in is them
// encoded again. Harbor's SCHEDULER takes any parameters and checks none,
// and its cores pass different ones (2.0: callback_func and params; later
// versions none, the schedule's callback being in core's database), so no
// schema: a schema would refuse what some Harbor core sends.
type Params map[string]any

// periodicMark is the parameter Harbor's job service adds to the
// parameters of every execution of a periodic job, with the execution's
// fire time (unix seconds, as a string): the job checks it in with the
// rest (src/jobservice/period: PeriodicExecutionMark and cloneParameters).
const periodicMark = "_job_kind_periodic_"

// Job is the SCHEDULER job type. Harbor core submits it as a Periodic job
// whose status hook is core's; each fire, the job checks in, and core's
// hook handler runs the schedule's callback on that check-in.
type Job struct{}

var (
	_ sdk.Runner[Params] = Job{}
	_ sdk.Retries        = Job{}
	_ sdk.Versioned      = Job{}
)

// MaxFails is Harbor's: 3.
func (Job) MaxFails() uint { return 3 }

// ShouldRetry is Harbor's: a failed check-in is retried.
func (Job) ShouldRetry() bool { return true }

// Version of the SCHEDULER job.
func (Job) Version() string { return "1.0.0" }

// Run checks in the parameters as JSON, as Harbor's job does
// (json.Marshal of its parameters; src/pkg/scheduler/periodic_job.go):
// keys sorted, no spaces, <, > and & escaped. An execution of a periodic
// policy adds Harbor's mark with its fire time first, as Harbor's job
// service does before the job runs, so the check-in is the very bytes
// Harbor's would be.
func (Job) Run(ctx sdk.Context, p Params) error {
	args := p
	if fire, ok := fireTime(ctx); ok {
		args = maps.Clone(p)
		if args == nil {
			args = Params{}
		}
		args[periodicMark] = fire
	}
	data, err := json.Marshal(args)
	if err != nil {
		// Decoded from JSON, the parameters always encode again.
		return sdk.Permanent(fmt.Errorf("encode the parameters: %w", err))
	}
	ctx.Logger().Info("checking in the parameters", "bytes", len(data))
	return ctx.Checkin(string(data))
}

// fireTime is the fire time of a periodic execution, whose ID is
// "<policy ID>@<unix seconds>" and whose upstream job is the policy.
func fireTime(ctx sdk.Context) (string, bool) {
	policy, _ := ctx.Property("upstream_job_id")
	fire, ok := strings.CutPrefix(ctx.JobID(), policy+"@")
	if policy == "" || !ok || fire == "" || strings.Trim(fire, "0123456789") != "" {
		return "", false
	}
	return fire, true
}
