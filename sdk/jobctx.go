package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/sdk/proto"
)

// Causes of a job context's end, readable with context.Cause.
var (
	errStopped   = errors.New("sdk: the job was asked to stop")
	errCancelled = errors.New("sdk: the job was asked to cancel")
)

// bridge carries a job's calls to the host.
type bridge interface {
	checkin(ctx context.Context, jobID, message string) error
	log(ctx context.Context, jobID string, entries []*proto.LogEntry) error
	launch(ctx context.Context, jobID string, request []byte) (stats []byte, err error)
}

// grpcBridge is the bridge over the host's callback service.
type grpcBridge struct{ host proto.HostClient }

func (b *grpcBridge) checkin(ctx context.Context, jobID, message string) error {
	if b.host == nil {
		return errNotAttached
	}
	_, err := b.host.Checkin(ctx, &proto.CheckinRequest{JobId: jobID, Message: message}, proto.GRPCCallOptions()...)
	return err
}

func (b *grpcBridge) log(ctx context.Context, jobID string, entries []*proto.LogEntry) error {
	if b.host == nil {
		return errNotAttached
	}
	_, err := b.host.Log(ctx, &proto.LogRequest{JobId: jobID, Entries: entries}, proto.GRPCCallOptions()...)
	return err
}

func (b *grpcBridge) launch(ctx context.Context, jobID string, request []byte) ([]byte, error) {
	if b.host == nil {
		return nil, errNotAttached
	}
	resp, err := b.host.LaunchJob(ctx, &proto.LaunchJobRequest{JobId: jobID, Request: request}, proto.GRPCCallOptions()...)
	if err != nil {
		return nil, err
	}
	return resp.GetStats(), nil
}

// logSendTimeout bounds one batch of log lines on its way to the host. Log
// lines written just before a stop still travel, so this does not follow
// the job's context.
const logSendTimeout = 10 * time.Second

// jobContext is the Context of one run inside the plugin process.
type jobContext struct {
	context.Context
	cancel context.CancelCauseFunc
	id     string
	props  map[string]string
	bridge bridge
	op     atomic.Value // OPCommand
	logs   *logSink
	logger *slog.Logger
}

func newJobContext(parent context.Context, id string, props map[string]string, b bridge) *jobContext {
	ctx, cancel := context.WithCancelCause(parent)
	c := &jobContext{Context: ctx, cancel: cancel, id: id, props: props, bridge: b}
	c.logs = newLogSink(func(entries []*proto.LogEntry) error {
		sendCtx, done := context.WithTimeout(context.WithoutCancel(ctx), logSendTimeout)
		defer done()
		return b.log(sendCtx, id, entries)
	})
	c.logger = slog.New(&logHandler{sink: c.logs})
	return c
}

// signal records why the job is asked to end and ends its context.
func (c *jobContext) signal(cmd OPCommand) {
	c.op.CompareAndSwap(nil, cmd)
	// The first command wins; end the context with its cause, not cmd's, so
	// that OPCommand and context.Cause agree when a stop and a cancel race.
	if first, _ := c.OPCommand(); first == OPCancel {
		c.cancel(errCancelled)
		return
	}
	c.cancel(errStopped)
}

// finish flushes the job's log and releases the context.
func (c *jobContext) finish() {
	c.logs.close()
	c.cancel(context.Canceled)
}

func (c *jobContext) JobID() string { return c.id }

func (c *jobContext) Checkin(message string) error {
	// Lines logged before a check-in reach the log before it.
	c.logs.flush()
	if err := c.bridge.checkin(c, c.id, message); err != nil {
		return fmt.Errorf("sdk: check in %q: %w", message, err)
	}
	return nil
}

func (c *jobContext) Logger() *slog.Logger { return c.logger }

func (c *jobContext) OPCommand() (OPCommand, bool) {
	cmd, ok := c.op.Load().(OPCommand)
	return cmd, ok
}

func (c *jobContext) Property(key string) (string, bool) {
	v, ok := c.props[key]
	return v, ok
}

func (c *jobContext) LaunchJob(req JobRequest) (string, error) {
	body, err := encodeJobRequest(req)
	if err != nil {
		return "", err
	}
	c.logs.flush()
	raw, err := c.bridge.launch(c, c.id, body)
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
		Name       string     `json:"name"`
		Parameters Parameters `json:"parameters,omitempty"`
		StatusHook string     `json:"status_hook,omitempty"`
		Metadata   metadata   `json:"metadata"`
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
