package job

import "time"

// Event is one change in a job's life as the store made it: a new job, a
// status change, a new revision or a check-in. Every change comes back
// from the store as an Event, and package events hands it to the host's
// observers (hook delivery, metrics, the live stream).
type Event struct {
	JobID string
	Name  string
	Kind  Kind
	// From is the status before the change; empty for a new job.
	From Status
	To   Status
	// FromRevision and Revision are the revisions before and after; a
	// new revision (a retry, a run after a host died) has Revision >
	// FromRevision.
	FromRevision, Revision int64
	// Time is when the store made the change (millisecond precision).
	Time   time.Time
	Reason Reason
	// CheckIn is the message of a check-in (Reason CheckedIn).
	CheckIn string
	// RetryAt is when the job runs again (unix s): a failed run waiting
	// for its retry (Reason RetryWait), or a snoozed one (Reason Snoozed).
	RetryAt int64
	// UpstreamJobID is the policy or parent job of an execution.
	UpstreamJobID string
	// Announced: the same change queued a status hook event for the
	// job's hook receiver.
	Announced bool
	// Detail says more, when the store's caller knows it: a failed run's
	// error, for instance. It is never stored.
	Detail string
}

// Reason says why a job changed.
type Reason string

// Reasons of events.
const (
	// Submitted: a job was created (Pending or Scheduled), or a periodic
	// policy was stored.
	Submitted Reason = "submitted"
	// Fired: a periodic policy created an execution for a fire time.
	Fired Reason = "fired"
	// Started: a worker started the job's run.
	Started Reason = "started"
	// Recovered: a job whose host died started again, in a new revision.
	Recovered Reason = "recovered"
	// Retried: a job waiting for its retry started again, in a new
	// revision.
	Retried Reason = "retried"
	// CheckedIn: a running job reported progress.
	CheckedIn Reason = "checked_in"
	// Succeeded: the run succeeded.
	Succeeded Reason = "succeeded"
	// Failed: the run failed and will not be retried.
	Failed Reason = "failed"
	// RetryWait: the run failed and will be retried at RetryAt.
	RetryWait Reason = "retry_wait"
	// Snoozed: the run asked to run again at RetryAt, without counting a
	// failure; the job is Scheduled in a new revision.
	Snoozed Reason = "snoozed"
	// StoppedByRequest and CancelledByRequest: an operator's stop or
	// cancel ended the job (a queued job at once, a running one once its
	// run returned, or an execution with its policy).
	StoppedByRequest   Reason = "stopped"
	CancelledByRequest Reason = "cancelled"
	// Requeued: the host shut down during the run; the job is queued
	// again in a new revision.
	Requeued Reason = "requeued"
	// Stale: a running job showed no progress for too long (the reaper).
	Stale Reason = "stale"
	// RetryRequested: the retry action queued a job in Error again.
	RetryRequested Reason = "retry_requested"
)

// StopReason is the reason of an operator's op.
func StopReason(op Action) Reason {
	if op == ActionCancel {
		return CancelledByRequest
	}
	return StoppedByRequest
}
