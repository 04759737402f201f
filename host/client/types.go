package client

import (
	"encoding/json"
	"fmt"
)

// Status is a job's status.
type Status string

// Statuses, in the order a revision moves through them.
const (
	Pending   Status = "Pending"
	Scheduled Status = "Scheduled"
	Running   Status = "Running"
	Stopped   Status = "Stopped"
	Error     Status = "Error"
	Success   Status = "Success"
)

// Statuses lists every status.
var Statuses = []Status{Pending, Scheduled, Running, Stopped, Error, Success}

// Code is the rank of the status within a revision: Pending 0, Scheduled 1,
// Running 2, the final ones 3. It is -1 for an unknown status.
func (s Status) Code() int {
	switch s {
	case Pending:
		return 0
	case Scheduled:
		return 1
	case Running:
		return 2
	case Stopped, Error, Success:
		return 3
	}
	return -1
}

// Validate reports an unknown status.
func (s Status) Validate() error {
	if s.Code() < 0 {
		return fmt.Errorf("job: unknown status %q", string(s))
	}
	return nil
}

// Final tells whether the status ends a revision.
func (s Status) Final() bool { return s.Code() == 3 }

// Kind is how a job is run.
type Kind string

// Kinds.
const (
	// Generic jobs run once, as soon as a worker is free.
	Generic Kind = "Generic"
	// KindScheduled jobs run once, schedule_delay seconds after submission;
	// periodic executions are Scheduled too.
	KindScheduled Kind = "Scheduled"
	// Periodic jobs are policies that start an execution at every cron time.
	Periodic Kind = "Periodic"
)

// Kinds lists every kind.
var Kinds = []Kind{Generic, KindScheduled, Periodic}

// Valid tells whether k is a known kind.
func (k Kind) Valid() bool { return k == Generic || k == KindScheduled || k == Periodic }

// Parameters are a job's parameters, decoded from JSON.
type Parameters = map[string]any

// Stats is what the job service knows of a job: the "job" object of
// GET /api/v1/jobs/{id}, of the submission's answer and of hook events.
// Times are unix seconds.
type Stats struct {
	ID              string     `json:"id"`
	Status          Status     `json:"status"`
	Name            string     `json:"name"`
	Kind            Kind       `json:"kind"`
	Unique          bool       `json:"unique"`
	RefLink         string     `json:"ref_link,omitempty"`
	CronSpec        string     `json:"cron_spec,omitempty"`
	EnqueueTime     int64      `json:"enqueue_time"`
	UpdateTime      int64      `json:"update_time"`
	RunAt           int64      `json:"run_at,omitempty"`
	CheckIn         string     `json:"check_in,omitempty"`
	CheckInAt       int64      `json:"check_in_at,omitempty"`
	DieAt           int64      `json:"die_at,omitempty"`
	WebHookURL      string     `json:"web_hook_url,omitempty"`
	UpstreamJobID   string     `json:"upstream_job_id,omitempty"`
	NumericPolicyID int64      `json:"numeric_policy_id,omitempty"`
	Parameters      Parameters `json:"parameters,omitempty"`
	Revision        int64      `json:"revision,omitempty"`
	Ack             *Ack       `json:"ack,omitempty"`
	// Output is what the job's last successful run produced (JSON), a
	// Berth extension: scan reports, replication summaries.
	Output json.RawMessage `json:"output,omitempty"`
}

// Ack is the last status event a job's status hook receiver accepted.
type Ack struct {
	Status    Status `json:"status"`
	Revision  int64  `json:"revision"`
	CheckInAt int64  `json:"check_in_at"`
	// CheckInSeq numbers the check-ins of a run (a Berth extension: several
	// check-ins within a second share their check_in_at).
	CheckInSeq int64 `json:"check_in_seq,omitempty"`
}

// Envelope wraps stats as the API sends them: {"job":{...}}.
type Envelope struct {
	Job *Stats `json:"job"`
}

// StatusChange is the body of a status hook call.
type StatusChange struct {
	JobID    string `json:"job_id"`
	Status   Status `json:"status"`
	CheckIn  string `json:"check_in,omitempty"`
	Metadata *Stats `json:"metadata,omitempty"`
}

// WorkerPool is one host's worker pool, as GET /api/v1/stats shows it.
type WorkerPool struct {
	WorkerPoolID string   `json:"worker_pool_id"`
	StartedAt    int64    `json:"started_at"`
	HeartbeatAt  int64    `json:"heartbeat_at"`
	JobNames     []string `json:"job_names"`
	Concurrency  uint     `json:"concurrency"`
	Status       string   `json:"status"`
}

// Worker pool statuses.
const (
	PoolHealthy = "Healthy"
	PoolDead    = "Dead"
)

// PoolStats is the answer of GET /api/v1/stats.
type PoolStats struct {
	Pools []*WorkerPool `json:"worker_pools"`
}

// PoolConfig is the answer of GET /api/v1/config. The inner keys are Go
// field names, as Harbor sends them.
type PoolConfig struct {
	RedisPoolConfig RedisPoolConfig `json:"redis_pool_config"`
}

// RedisPoolConfig is the Redis part of PoolConfig.
type RedisPoolConfig struct {
	RedisURL          string
	Namespace         string
	IdleTimeoutSecond int64
}

// Request is the body of POST /api/v1/jobs.
type Request struct {
	Job *RequestJob `json:"job"`
}

// RequestJob is a job submission.
type RequestJob struct {
	Name       string     `json:"name"`
	Parameters Parameters `json:"parameters"`
	StatusHook string     `json:"status_hook"`
	Metadata   *Metadata  `json:"metadata"`
}

// Metadata says how to run a submitted job.
type Metadata struct {
	Kind Kind `json:"kind"`
	// ScheduleDelay is the wait, in seconds, of a Scheduled job.
	ScheduleDelay uint64 `json:"schedule_delay,omitempty"`
	// CronSpec is the 6-field cron spec, seconds first, of a Periodic job.
	CronSpec string `json:"cron_spec,omitempty"`
	Unique   bool   `json:"unique"`
}

// ActionRequest is the body of POST /api/v1/jobs/{id}.
type ActionRequest struct {
	Action Action `json:"action"`
}

// Action is an operator's request on a job.
type Action string

// Actions.
const (
	ActionStop   Action = "stop"
	ActionCancel Action = "cancel"
	ActionRetry  Action = "retry"
)

// ErrorBody is the body of every error answer, with Harbor's codes.
type ErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}
