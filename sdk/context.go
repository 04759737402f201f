package sdk

import (
	"context"
	"log/slog"

	"github.com/berth-dev/berth/sdk/internal/core"
)

// Context is what a running job gets from the host.
type Context interface {
	// Done is closed when the job is stopped or cancelled, passes its
	// deadline, or the host shuts down. Err and context.Cause tell which.
	context.Context
	// JobID is the ID of the job (for a periodic execution: "<policy>@<time>").
	JobID() string
	// Attempt is the attempt of this run, from 1; a retry counts up.
	Attempt() int
	// Checkin reports progress. The message becomes the job's check_in and
	// is sent to its status hook, after the lines logged before it. It does
	// not wait for the host; it fails once Run has returned or the host is
	// gone.
	Checkin(message string) error
	// Logger writes to the job's log (readable with GET /api/v1/jobs/{id}/log).
	// Levels map to the job log's DEBUG, INFO, WARNING and ERROR; a level
	// above Error is FATAL. Attributes are appended as key=value.
	Logger() *slog.Logger
	// OPCommand tells whether the job was asked to stop or to cancel.
	// ok is false while no such request has arrived.
	OPCommand() (cmd OPCommand, ok bool)
	// Property returns a read-only property of the job, set by the host's
	// configuration (job_properties) or by the host itself (job_id,
	// job_name, revision, upstream_job_id).
	Property(key string) (value string, ok bool)
	// SetOutput sets what a successful run produced: v as JSON (at most
	// 1 MiB), kept with the job's stats and sent in its final status hook.
	SetOutput(v any) error
	// LaunchJob submits a sub-job. The host tracks it as an execution of
	// this job (its upstream_job_id is this job's ID). It returns the new
	// job's ID. A job told to end (Done is closed) launches nothing.
	LaunchJob(req JobRequest) (id string, err error)
}

// OPCommand is an operator's request to end a running job.
type OPCommand = core.OPCommand

const (
	// OPStop asks the job to stop; it ends in status Stopped.
	OPStop = core.OPStop
	// OPCancel asks the job to cancel; it ends in status Stopped as well,
	// but the job may undo partial work, which a stop keeps.
	OPCancel = core.OPCancel
)

// JobRequest describes a sub-job for Context.LaunchJob: Name,
// Parameters, ScheduleDelay (seconds; 0 runs it at once), Unique and
// StatusHook.
type JobRequest = core.JobRequest

var _ Context = (*core.JobContext)(nil)
