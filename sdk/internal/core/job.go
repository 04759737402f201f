package core

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Spec is what the sdk knows of one job type.
type Spec struct {
	MaxFails       uint
	ShouldRetry    bool
	MaxConcurrency uint
	MaxSnoozes     uint
	Version        string
	// ParamsSchema is the JSON Schema of the parameters (nil: none).
	ParamsSchema []byte
	// Validates: Validate checks more than the schema does.
	Validates bool
	// Validate decodes the parameters (JSON) and checks them.
	Validate func(params []byte) error
	// Run decodes the parameters and runs the job.
	Run func(ctx *JobContext, params []byte) error
	// Err says why the job type cannot be served (Serve refuses it).
	Err error
	// Declare, when set, returns the spec with what the job declares
	// (MaxFails to MaxSnoozes) asked again: Describe uses it, so that a
	// declaration may follow the plugin's configuration.
	Declare func(Spec) Spec
}

// Job is a job type ready to serve; package sdk makes them.
type Job struct{ spec *Spec }

// NewJob wraps a spec.
func NewJob(s Spec) Job { return Job{spec: &s} }

// SpecOf returns the spec of a job (nil for the zero Job).
func SpecOf(j Job) *Spec { return j.spec }

// checkJobs refuses a set of jobs that cannot be served.
func checkJobs(jobs map[string]Job) ([]string, error) {
	if len(jobs) == 0 {
		return nil, errors.New("sdk.Serve needs at least one job: sdk.Serve(sdk.Jobs{\"NAME\": sdk.Typed[Params](job)})")
	}
	names := make([]string, 0, len(jobs))
	for name := range jobs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			return nil, errors.New("sdk.Serve: a job has an empty name")
		}
		s := jobs[name].spec
		if s == nil || s.Run == nil {
			return nil, fmt.Errorf("sdk.Serve: job %q is the zero sdk.Job: make it with sdk.Typed", name)
		}
		if s.Err != nil {
			return nil, fmt.Errorf("sdk.Serve: job %q: its parameters: %w", name, s.Err)
		}
	}
	return names, nil
}

// permanent marks an error a retry cannot mend.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the run is never retried.
func Permanent(err error) error {
	if err == nil {
		err = errors.New("permanent failure")
	}
	return &permanent{err: err}
}

// snooze asks to run again later, without counting a failure.
type snooze struct {
	after  time.Duration
	reason string
}

func (s *snooze) Error() string {
	msg := "snoozed for " + s.after.String()
	if s.reason != "" {
		msg += ": " + s.reason
	}
	return msg
}

// Snooze asks the host to run the job again after d (at least a second).
func Snooze(d time.Duration, reason string) error {
	return &snooze{after: max(d, time.Second), reason: reason}
}
