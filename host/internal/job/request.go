package job

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/host/client"
)

// Submission and action types.
type (
	// Request is the body of POST /api/v1/jobs.
	Request = client.Request
	// RequestJob is a job submission.
	RequestJob = client.RequestJob
	// Metadata says how to run a submitted job.
	Metadata = client.Metadata
	// ActionRequest is the body of POST /api/v1/jobs/{id}.
	ActionRequest = client.ActionRequest
	// Action is an operator's request on a job.
	Action = client.Action
)

// Actions.
const (
	ActionStop   = client.ActionStop
	ActionCancel = client.ActionCancel
	ActionRetry  = client.ActionRetry
)

// MaxScheduleDelay bounds schedule_delay (ten years, in seconds).
const MaxScheduleDelay = 10 * 365 * 24 * 3600

// Check checks what can be checked of a submission without the job's
// plugin and without parsing the cron spec (package periodic does that),
// and gives nil parameters the empty object. Errors are *BadRequestError.
func Check(r *RequestJob) error {
	if r == nil {
		return BadRequest(`the request has no "job" object: send {"job":{"name":...,"metadata":{"kind":...}}}`)
	}
	if r.Name == "" {
		return BadRequest(`"job.name" is empty: name the job type to run`)
	}
	if r.Metadata == nil {
		return BadRequest(`"job.metadata" is missing: it needs at least "kind" (Generic, Scheduled or Periodic)`)
	}
	m := r.Metadata
	if !m.Kind.Valid() {
		return BadRequest(fmt.Sprintf(`"job.metadata.kind" is %q: it must be Generic, Scheduled or Periodic`, string(m.Kind)))
	}
	switch m.Kind {
	case KindScheduled:
		if m.ScheduleDelay == 0 {
			return BadRequest(`"job.metadata.schedule_delay" must be a positive number of seconds for a Scheduled job`)
		}
		if m.ScheduleDelay > MaxScheduleDelay {
			return BadRequest(fmt.Sprintf(`"job.metadata.schedule_delay" is %d seconds: at most %d (ten years) is allowed`, m.ScheduleDelay, MaxScheduleDelay))
		}
	case Periodic:
		if m.CronSpec == "" {
			return BadRequest(`"job.metadata.cron_spec" is empty: a Periodic job needs a 6-field cron spec, seconds first, e.g. "0 */5 * * * *"`)
		}
	}
	if m.ScheduleDelay != 0 && m.Kind != KindScheduled {
		return BadRequest(fmt.Sprintf(`"job.metadata.schedule_delay" is %d, but a %s job does not wait: use kind Scheduled to run it later, or leave schedule_delay out`,
			m.ScheduleDelay, m.Kind))
	}
	if err := checkHookURL(r.StatusHook); err != nil {
		return err
	}
	if r.Parameters == nil {
		r.Parameters = Parameters{}
	}
	return nil
}

// MaxHookURLLength bounds a status hook URL.
const MaxHookURLLength = 2048

// checkHookURL checks a status hook: empty, or an absolute http(s) URL
// with a host, which a hook worker can call.
func checkHookURL(hook string) error {
	if hook == "" {
		return nil
	}
	bad := func(why string) error {
		shown := hook
		if len(shown) > 80 {
			shown = shown[:80] + "..."
		}
		return BadRequest(fmt.Sprintf(`"job.status_hook" is %q: %s`, shown, why))
	}
	if len(hook) > MaxHookURLLength {
		return bad(fmt.Sprintf("it is longer than %d bytes", MaxHookURLLength))
	}
	u, err := url.Parse(hook)
	if err != nil {
		return bad("it is not a URL (" + strings.TrimPrefix(err.Error(), "parse "+strconv.Quote(hook)+": ") + ")")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("it must be an http:// or https:// URL")
	}
	if u.Hostname() == "" {
		return bad("it names no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("its port must be 1 to 65535")
		}
	}
	return nil
}

// Errors shared by every layer; package api maps them to HTTP statuses.
var (
	// ErrNotFound: no job with that ID.
	ErrNotFound = errors.New("job not found")
	// ErrUnknownAction: the action is not stop, cancel or retry.
	ErrUnknownAction = errors.New("unknown action")
	// ErrNotPeriodic: executions were asked of a job that is not periodic.
	ErrNotPeriodic = errors.New("job is not periodic")
)

// BadRequestError is a request the service cannot take as sent.
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

// BadRequest returns a *BadRequestError.
func BadRequest(reason string) error { return &BadRequestError{Reason: reason} }

// ConflictError is a unique job submitted (or retried) while an identical
// one has not ended.
type ConflictError struct {
	Name       string
	ExistingID string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("a unique %s job with the same parameters has not ended: %s", e.Name, e.ExistingID)
}

// StatusMismatchError is an action that does not fit the job's status.
type StatusMismatchError struct {
	ID     string
	Action Action
	Status Status
}

func (e *StatusMismatchError) Error() string {
	return fmt.Sprintf("cannot %s job %s: its status is %s", e.Action, e.ID, e.Status)
}
