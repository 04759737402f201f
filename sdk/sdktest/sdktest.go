package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/berth-dev/berth/sdk"
)

// Result is what a finished run did.
type Result struct {
	// Err is what Run returned.
	Err error
	// CheckIns are the messages passed to Checkin, in order.
	CheckIns []string
	// Logs are the lines written through the job's logger, in order.
	Logs []LogLine
	// Launched are the sub-jobs the job launched, in order.
	Launched []sdk.JobRequest
}

// LogLine is one line of a job's log.
type LogLine struct {
	Level   slog.Level
	Message string // the message followed by " key=value" attributes
}

// Option changes how a job runs.
type Option func(*runConfig)

type runConfig struct {
	id     string
	props  map[string]string
	parent context.Context
}

// WithJobID sets the job's ID (default "000000000000000000000001").
func WithJobID(id string) Option { return func(c *runConfig) { c.id = id } }

// WithProperties sets the job's properties.
func WithProperties(props map[string]string) Option {
	return func(c *runConfig) { c.props = props }
}

// WithContext makes the run end when ctx is done, as on a host shutdown.
func WithContext(ctx context.Context) Option { return func(c *runConfig) { c.parent = ctx } }

// Validate calls job.Validate with params as the host delivers them.
func Validate(job sdk.Job, params sdk.Parameters) error {
	p, err := overTheWire(params)
	if err != nil {
		return err
	}
	return job.Validate(p)
}

// Run runs job to its end and reports what it did.
func Run(job sdk.Job, params sdk.Parameters, opts ...Option) Result {
	return Start(job, params, opts...).Wait()
}

// Running is a job started by Start.
type Running struct {
	ctx     *jobContext
	done    chan struct{}
	err     error
	checkIn chan string
}

// Start runs job in the background.
func Start(job sdk.Job, params sdk.Parameters, opts ...Option) *Running {
	cfg := runConfig{id: "000000000000000000000001", parent: context.Background()}
	for _, o := range opts {
		o(&cfg)
	}
	r := &Running{done: make(chan struct{}), checkIn: make(chan string, 1024)}
	r.ctx = newJobContext(cfg, r.checkIn)
	p, err := overTheWire(params)
	if err != nil {
		r.err = err
		close(r.done)
		return r
	}
	go func() {
		defer close(r.done)
		// As under the host, the job's context ends when Run returns.
		defer r.ctx.cancel(context.Canceled)
		defer func() {
			if v := recover(); v != nil {
				r.err = fmt.Errorf("Run panicked: %v", v)
			}
		}()
		r.err = job.Run(r.ctx, p)
	}()
	return r
}

// Stop asks the job to stop, as `{"action":"stop"}` does.
func (r *Running) Stop() { r.ctx.signal(sdk.OPStop) }

// Cancel asks the job to cancel, as `{"action":"cancel"}` does.
func (r *Running) Cancel() { r.ctx.signal(sdk.OPCancel) }

// WaitCheckin waits until the job checks in with message, or ctx is done,
// or the job ends.
func (r *Running) WaitCheckin(ctx context.Context, message string) error {
	for {
		select {
		case m := <-r.checkIn:
			if m == message {
				return nil
			}
		case <-r.done:
			// The run may have checked in just before it ended.
			for {
				select {
				case m := <-r.checkIn:
					if m == message {
						return nil
					}
				default:
					return fmt.Errorf("sdktest: the job ended without checking in %q", message)
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("sdktest: waiting for check-in %q: %w", message, ctx.Err())
		}
	}
}

// Wait waits for the job to end and reports what it did.
func (r *Running) Wait() Result {
	<-r.done
	return r.ctx.result(r.err)
}

func overTheWire(params sdk.Parameters) (sdk.Parameters, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sdktest: parameters cannot travel as JSON: %w", err)
	}
	p := sdk.Parameters{}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("sdktest: parameters are not a JSON object: %w", err)
	}
	if p == nil {
		p = sdk.Parameters{}
	}
	return p, nil
}

// jobContext records what the job does.
type jobContext struct {
	context.Context
	cancel  context.CancelCauseFunc
	id      string
	props   map[string]string
	logger  *slog.Logger
	checkIn chan<- string

	mu       sync.Mutex
	op       sdk.OPCommand
	checkIns []string
	logs     []LogLine
	launched []sdk.JobRequest
}

func newJobContext(cfg runConfig, checkIn chan<- string) *jobContext {
	ctx, cancel := context.WithCancelCause(cfg.parent)
	c := &jobContext{Context: ctx, cancel: cancel, id: cfg.id, props: cfg.props, checkIn: checkIn}
	c.logger = slog.New(&recorder{c: c})
	return c
}

func (c *jobContext) signal(cmd sdk.OPCommand) {
	c.mu.Lock()
	if c.op == "" {
		c.op = cmd
	}
	first := c.op
	c.mu.Unlock()
	// The cause names the first command, as OPCommand does.
	c.cancel(fmt.Errorf("sdktest: %s requested", first))
}

func (c *jobContext) result(err error) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Result{Err: err, CheckIns: append([]string(nil), c.checkIns...),
		Logs: append([]LogLine(nil), c.logs...), Launched: append([]sdk.JobRequest(nil), c.launched...)}
}

func (c *jobContext) JobID() string        { return c.id }
func (c *jobContext) Logger() *slog.Logger { return c.logger }

func (c *jobContext) Checkin(message string) error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("sdktest: check in %q: %w", message, err)
	}
	c.mu.Lock()
	c.checkIns = append(c.checkIns, message)
	c.mu.Unlock()
	select {
	case c.checkIn <- message:
	default:
	}
	return nil
}

func (c *jobContext) OPCommand() (sdk.OPCommand, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.op, c.op != ""
}

func (c *jobContext) Property(key string) (string, bool) {
	v, ok := c.props[key]
	return v, ok
}

func (c *jobContext) LaunchJob(req sdk.JobRequest) (string, error) {
	if req.Name == "" {
		return "", errors.New("sdktest: launch sub-job: JobRequest.Name is empty")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launched = append(c.launched, req)
	return fmt.Sprintf("%024x", len(c.launched)), nil
}

// recorder is the slog.Handler of the job's logger.
type recorder struct {
	c     *jobContext
	attrs string
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		return true
	})
	h.c.mu.Lock()
	h.c.logs = append(h.c.logs, LogLine{Level: r.Level, Message: b.String()})
	h.c.mu.Unlock()
	return nil
}

func (h *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
	}
	return &recorder{c: h.c, attrs: b.String()}
}

func (h *recorder) WithGroup(string) slog.Handler { return h }
