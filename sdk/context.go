package sdk

import (
	"context"
	"log/slog"
)

// Context is what a running job gets from the host.
type Context interface {
	// Done is closed when the job is stopped or cancelled, times out, or the
	// host shuts down. Err and context.Cause tell which.
	context.Context
	// JobID is the ID of the job (for a periodic execution: "<policy>@<time>").
	JobID() string
	// Checkin reports progress. The message becomes the job's check_in and
	// is sent to its status hook.
	Checkin(message string) error
	// Logger writes to the job's log (readable with GET /api/v1/jobs/{id}/log).
	// Levels map to the job log's DEBUG, INFO, WARNING and ERROR; a level
	// above Error is FATAL. Attributes are appended as key=value.
	Logger() *slog.Logger
	// OPCommand tells whether the job was asked to stop or to cancel.
	// ok is false while no such request has arrived.
	OPCommand() (cmd OPCommand, ok bool)
	// Property returns a read-only property of the job, set by the host's
	// configuration (job_properties) or by the host itself.
	Property(key string) (value string, ok bool)
	// LaunchJob submits a sub-job. The host tracks it as an execution of
	// this job (its upstream_job_id is this job's ID). It returns the new
	// job's ID.
	LaunchJob(req JobRequest) (id string, err error)
}

// OPCommand is an operator's request to end a running job.
type OPCommand string

const (
	// OPStop asks the job to stop; it ends in status Stopped.
	OPStop OPCommand = "stop"
	// OPCancel asks the job to cancel; it ends in status Stopped as well,
	// but the job may undo partial work, which a stop keeps.
	OPCancel OPCommand = "cancel"
)

// JobRequest describes a sub-job for Context.LaunchJob.
type JobRequest struct {
	Name       string
	Parameters Parameters
	// ScheduleDelay, when positive, runs the job that many seconds later
	// (a Scheduled job); zero runs it as soon as a worker is free.
	ScheduleDelay uint64
	// Unique refuses the launch while an identical job (same name and
	// parameters) is queued.
	Unique bool
	// StatusHook receives the sub-job's status changes.
	StatusHook string
}
