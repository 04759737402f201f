package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/sdk/proto"
)

// OPCommand is an operator's request to end a running job.
type OPCommand string

// Operator requests.
const (
	OPStop   OPCommand = "stop"
	OPCancel OPCommand = "cancel"
)

// JobRequest describes a sub-job for LaunchJob.
type JobRequest struct {
	Name       string
	Parameters map[string]any
	// ScheduleDelay, when positive, runs the job that many seconds later
	// (a Scheduled job); zero runs it as soon as a worker is free.
	ScheduleDelay uint64
	// Unique refuses the launch while an identical job (same name and
	// parameters) is queued.
	Unique bool
	// StatusHook receives the sub-job's status changes.
	StatusHook string
}

// Causes of a job context's end, readable with context.Cause.
var (
	ErrStopped   = errors.New("the job was asked to stop")
	ErrCancelled = errors.New("the job was asked to cancel")
	ErrShutdown  = errors.New("the host is shutting down; the job will run again on another host")
	ErrHostGone  = errors.New("the host closed the session")
	// ErrHostFrozen: the host has been stopped (frozen) so long that it
	// cannot renew its jobs' leases; another host will run the job, so
	// this run is given up.
	ErrHostFrozen = errors.New("the host is frozen and cannot keep its lease on the job; the run is given up, another host will run it")
	ErrDeadline   = errors.New("the job ran past its deadline (job_timeout)")
)

// MaxOutputBytes bounds a run's output.
const MaxOutputBytes = 1 << 20

// errEnded: a call made after Run returned (from a goroutine it left
// behind); nothing is sent.
var errEnded = errors.New("the run has ended")

// JobContext is the context of one run inside the plugin process; it is
// the value behind sdk.Context.
type JobContext struct {
	context.Context
	cancel  context.CancelCauseFunc
	id      string
	attempt int
	props   map[string]string
	sess    *session
	logs    *logSink
	logger  *slog.Logger

	sigMu sync.Mutex // signals, one at a time

	// ending is held for reading by every call that sends, and for
	// writing by finish: nothing of a run is sent after its outcome.
	ending sync.RWMutex
	ended  bool

	mu     sync.Mutex
	output []byte
}

func newJobContext(parent context.Context, start *proto.Start, sess *session) *JobContext {
	ctx, cancel := context.WithCancelCause(parent)
	jc := &JobContext{Context: ctx, cancel: cancel, id: start.GetJobId(), attempt: int(start.GetAttempt()),
		props: start.GetProperties(), sess: sess}
	if ms := start.GetDeadlineUnixMs(); ms > 0 {
		var stop context.CancelFunc
		jc.Context, stop = context.WithDeadlineCause(ctx, time.UnixMilli(ms), ErrDeadline)
		jc.cancel = func(cause error) { cancel(cause); stop() }
	}
	jc.logs = newLogSink(func(entries []*proto.LogEntry) error {
		return sess.send(&proto.PluginMessage{Msg: &proto.PluginMessage_Logs{Logs: &proto.Logs{JobId: jc.id, Entries: entries}}})
	})
	jc.logger = slog.New(&logHandler{sink: jc.logs})
	return jc
}

// signal ends the job's context with the reason's cause, unless it has
// ended already (a stop after a shutdown or the deadline changes nothing):
// the first cause stands, and OPCommand always agrees with it.
func (c *JobContext) signal(reason proto.StopReason) {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if c.Err() != nil {
		return
	}
	switch reason {
	case proto.StopReason_STOP_REASON_CANCEL:
		c.cancel(ErrCancelled)
	case proto.StopReason_STOP_REASON_SHUTDOWN:
		c.cancel(ErrShutdown)
	default:
		c.cancel(ErrStopped)
	}
}

// abandon ends the job's context with cause, unless it has ended.
func (c *JobContext) abandon(cause error) {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if c.Err() == nil {
		c.cancel(cause)
	}
}

// finish ends the run once Run returned: calls from goroutines it left
// behind send nothing from now on, its last log lines are sent, and its
// context is released.
func (c *JobContext) finish() {
	c.ending.Lock()
	c.ended = true
	c.ending.Unlock()
	c.logs.close()
	c.cancel(context.Canceled)
}

// live runs send while the run has not ended.
func (c *JobContext) live(send func() error) error {
	c.ending.RLock()
	defer c.ending.RUnlock()
	if c.ended {
		return errEnded
	}
	return send()
}

// JobID is the ID of the job.
func (c *JobContext) JobID() string { return c.id }

// Attempt is the attempt of this run, from 1.
func (c *JobContext) Attempt() int { return c.attempt }

// Checkin sends a progress message and returns without waiting for the
// host, which records check-ins in order, after the lines logged before
// them. It works after a stop (the job may say why it ends), not after
// Run returned or the session ended.
func (c *JobContext) Checkin(message string) error {
	if message == "" {
		return errors.New("sdk: a check-in needs a message")
	}
	err := c.live(func() error {
		c.logs.flush()
		return c.sess.checkin(c.id, message)
	})
	if err != nil {
		return fmt.Errorf("sdk: check in %q: %w", message, err)
	}
	return nil
}

// Logger writes to the job's log.
func (c *JobContext) Logger() *slog.Logger { return c.logger }

// OPCommand tells whether the job was asked to stop or to cancel: the
// cause its context ended with.
func (c *JobContext) OPCommand() (OPCommand, bool) {
	switch context.Cause(c) {
	case ErrStopped:
		return OPStop, true
	case ErrCancelled:
		return OPCancel, true
	}
	return "", false
}

// Property returns a read-only property of the job.
func (c *JobContext) Property(key string) (string, bool) {
	v, ok := c.props[key]
	return v, ok
}

// SetOutput sets what a successful run produced, kept with the job's stats
// and sent in its final status hook: v as JSON, at most MaxOutputBytes.
func (c *JobContext) SetOutput(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sdk: the output is not JSON: %w", err)
	}
	if len(raw) > MaxOutputBytes {
		return fmt.Errorf("sdk: the output is %d bytes of JSON, more than the %d allowed", len(raw), MaxOutputBytes)
	}
	c.mu.Lock()
	c.output = raw
	c.mu.Unlock()
	return nil
}

func (c *JobContext) outputJSON() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.output
}

// LaunchJob submits a sub-job and returns its ID.
func (c *JobContext) LaunchJob(req JobRequest) (string, error) {
	body, err := encodeJobRequest(req)
	if err != nil {
		return "", err
	}
	raw, err := c.sess.launch(c, c.id, body, func(send func() error) error {
		return c.live(func() error {
			// A job told to end launches nothing more.
			if c.Err() != nil {
				return context.Cause(c)
			}
			c.logs.flush()
			return send()
		})
	})
	if err != nil {
		return "", fmt.Errorf("sdk: launch sub-job %s: %w", req.Name, err)
	}
	var stats struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &stats); err != nil || stats.ID == "" {
		return "", fmt.Errorf("sdk: launch sub-job %s: the host answered stats without an id: %q", req.Name, raw)
	}
	return stats.ID, nil
}

// encodeJobRequest gives the "job" object of a Harbor job request.
func encodeJobRequest(req JobRequest) ([]byte, error) {
	if req.Name == "" {
		return nil, errors.New("sdk: launch sub-job: JobRequest.Name is empty")
	}
	type metadata struct {
		Kind          string `json:"kind"`
		ScheduleDelay uint64 `json:"schedule_delay,omitempty"`
		Unique        bool   `json:"unique"`
	}
	type request struct {
		Name       string         `json:"name"`
		Parameters map[string]any `json:"parameters,omitempty"`
		StatusHook string         `json:"status_hook,omitempty"`
		Metadata   metadata       `json:"metadata"`
	}
	r := request{Name: req.Name, Parameters: req.Parameters, StatusHook: req.StatusHook,
		Metadata: metadata{Kind: "Generic", ScheduleDelay: req.ScheduleDelay, Unique: req.Unique}}
	if req.ScheduleDelay > 0 {
		r.Metadata.Kind = "Scheduled"
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("sdk: launch sub-job %s: parameters are not JSON: %w", req.Name, err)
	}
	return body, nil
}
