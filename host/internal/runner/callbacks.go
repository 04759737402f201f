package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/sdk/proto"
)

// The runner serves the callbacks of running jobs (pluginhost.Callbacks).

// Checkin records a running job's progress messages, in order.
func (r *Runner) Checkin(ctx context.Context, jobID string, messages ...string) error {
	a := r.started(jobID)
	if a == nil {
		return fmt.Errorf("job %s is not running on this host", jobID)
	}
	if len(messages) == 0 || slices.Contains(messages, "") {
		return fmt.Errorf("job %s: a check-in needs a message", jobID)
	}
	return r.reporter.Checkin(ctx, jobID, a.Revision, messages...)
}

// Log appends a running job's log entries to its log.
func (r *Runner) Log(_ context.Context, jobID string, entries []*proto.LogEntry) error {
	a := r.started(jobID)
	if a == nil {
		return fmt.Errorf("job %s is not running on this host", jobID)
	}
	for _, e := range entries {
		a.Log.Log(levelOf(e.GetLevel()), e.GetMessage())
	}
	return nil
}

// LaunchJob submits a sub-job of a running job.
func (r *Runner) LaunchJob(ctx context.Context, parentID string, request []byte) ([]byte, error) {
	if r.started(parentID) == nil {
		return nil, fmt.Errorf("job %s is not running on this host", parentID)
	}
	st, err := r.reporter.Launch(ctx, parentID, request)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

func levelOf(l proto.LogLevel) joblog.Level {
	switch l {
	case proto.LogLevel_LOG_LEVEL_DEBUG:
		return joblog.Debug
	case proto.LogLevel_LOG_LEVEL_WARNING:
		return joblog.Warning
	case proto.LogLevel_LOG_LEVEL_ERROR:
		return joblog.Error
	case proto.LogLevel_LOG_LEVEL_FATAL:
		return joblog.Fatal
	default:
		return joblog.Info
	}
}
