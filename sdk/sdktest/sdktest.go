package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/internal/core"
	"github.com/berth-dev/berth/sdk/proto"
	"github.com/berth-dev/berth/sdk/schema"
)

// jobName is the name the job is served under.
const jobName = "JOB"

// Kind is how a run ended, as the host sees it.
type Kind string

// Outcome kinds.
const (
	// Succeeded: Run returned nil.
	Succeeded Kind = "success"
	// Failed: Run returned an error (or panicked); the host retries it by
	// the job type's rules.
	Failed Kind = "error"
	// FailedPermanently: Run returned sdk.Permanent(err); never retried.
	FailedPermanently Kind = "permanent_error"
	// Snoozed: Run returned sdk.Snooze(d, why).
	Snoozed Kind = "snooze"
)

// Result is what a finished run did.
type Result struct {
	Kind Kind
	// Err is the run's error as the host got it (nil on success).
	Err error
	// Panicked: Run panicked (Err holds the panic value).
	Panicked bool
	// Output is what the run set with SetOutput (JSON; nil when none).
	Output json.RawMessage
	// SnoozeFor is the wait a snoozed run asked for.
	SnoozeFor time.Duration
	// CheckIns are the messages passed to Checkin, in order.
	CheckIns []string
	// Logs are the lines of the job's log, in order.
	Logs []LogLine
	// Launched are the sub-jobs the job launched, in order, as the host got
	// them (the "job" object of a Harbor job request, as JSON).
	Launched []json.RawMessage
}

// LogLine is one line of a job's log.
type LogLine struct {
	// Level is DEBUG, INFO, WARNING, ERROR or FATAL.
	Level string
	// Message is the message followed by " key=value" attributes.
	Message string
}

// Option changes how a job runs.
type Option func(*config)

type config struct {
	id      string
	props   map[string]string
	attempt uint32
	section []byte
	plugin  []sdk.Option
	timeout time.Duration
	errs    []string
}

// WithJobID sets the job's ID (default "000000000000000000000001").
func WithJobID(id string) Option { return func(c *config) { c.id = id } }

// WithProperties sets the job's properties, beside job_id and job_name.
func WithProperties(props map[string]string) Option { return func(c *config) { c.props = props } }

// WithAttempt sets the attempt of the run (default 1).
func WithAttempt(n int) Option { return func(c *config) { c.attempt = uint32(n) } }

// WithConfig hands the plugin v as its section of the host configuration
// (as JSON), as the host does at start. The plugin takes it through the
// sdk.WithConfig its main passes to Serve: pass that here with WithPlugin.
func WithConfig(v any) Option {
	return func(c *config) {
		raw, err := json.Marshal(v)
		if err != nil {
			c.errs = append(c.errs, "sdktest: WithConfig: the configuration cannot travel as JSON: "+err.Error())
			return
		}
		c.section = raw
	}
}

// WithPlugin serves the job with the options the plugin's main passes to
// sdk.Serve (such as its sdk.WithConfig).
func WithPlugin(opts ...sdk.Option) Option {
	return func(c *config) { c.plugin = append(c.plugin, opts...) }
}

// WithTimeout gives the run a deadline, as the host's job_timeout does.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// Validate checks params as the host does before it accepts a submission:
// against the job's JSON Schema, then the job's Validate.
func Validate(t testing.TB, job sdk.Job, params any, opts ...Option) error {
	t.Helper()
	p := serve(t, job, opts)
	raw := encode(t, params)
	if p.schema != nil {
		if err := p.schema.Check(raw); err != nil {
			return err
		}
	}
	if !p.validates {
		return nil
	}
	resp, err := p.client.Validate(context.Background(), &proto.ValidateRequest{JobName: jobName, Parameters: raw})
	if err != nil {
		t.Fatalf("sdktest: Validate: %v", err)
	}
	if resp.GetError() != "" {
		return errors.New(resp.GetError())
	}
	return nil
}

// encode gives the JSON of params as the host hands them over: nil
// parameters are the empty object.
func encode(t testing.TB, params any) []byte {
	t.Helper()
	raw, err := json.Marshal(params)
	if err != nil {
		t.Fatalf("sdktest: parameters cannot travel as JSON: %v", err)
	}
	if string(raw) == "null" {
		raw = []byte("{}")
	}
	return raw
}

// Run runs job to its end and reports what it did.
func Run(t testing.TB, job sdk.Job, params any, opts ...Option) Result {
	t.Helper()
	return Start(t, job, params, opts...).Wait()
}

// Running is a job started by Start.
type Running struct {
	t    testing.TB
	p    *served
	id   string
	done chan struct{}

	mu      sync.Mutex
	res     Result
	changed chan struct{} // closed and replaced at each check-in
}

// Start runs job in the background.
func Start(t testing.TB, job sdk.Job, params any, opts ...Option) *Running {
	t.Helper()
	p := serve(t, job, opts)
	raw := encode(t, params)
	props := map[string]string{"job_id": p.cfg.id, "job_name": jobName, "revision": "1"}
	for k, v := range p.cfg.props {
		props[k] = v
	}
	st := &proto.Start{JobId: p.cfg.id, JobName: jobName, Parameters: raw, Attempt: p.cfg.attempt, Properties: props, Revision: 1}
	if p.cfg.timeout > 0 {
		st.DeadlineUnixMs = time.Now().Add(p.cfg.timeout).UnixMilli()
	}
	r := &Running{t: t, p: p, id: p.cfg.id, done: make(chan struct{}), changed: make(chan struct{})}
	if err := p.send(&proto.HostMessage{Msg: &proto.HostMessage_Start{Start: st}}); err != nil {
		t.Fatalf("sdktest: start the run: %v", err)
	}
	go r.receive()
	return r
}

// receive plays the host's end of the session for the run.
func (r *Running) receive() {
	defer close(r.done)
	for {
		m, err := r.p.session.Recv()
		if err != nil {
			r.mu.Lock()
			r.res.Kind, r.res.Err = Failed, fmt.Errorf("sdktest: the session ended before the outcome: %w", err)
			r.mu.Unlock()
			return
		}
		switch x := m.GetMsg().(type) {
		case *proto.PluginMessage_Checkin:
			r.mu.Lock()
			r.res.CheckIns = append(r.res.CheckIns, x.Checkin.GetMessage())
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		case *proto.PluginMessage_Logs:
			r.mu.Lock()
			for _, e := range x.Logs.GetEntries() {
				r.res.Logs = append(r.res.Logs, LogLine{Level: levelName(e.GetLevel()), Message: e.GetMessage()})
			}
			r.mu.Unlock()
		case *proto.PluginMessage_Launch:
			r.mu.Lock()
			r.res.Launched = append(r.res.Launched, json.RawMessage(x.Launch.GetRequest()))
			n := len(r.res.Launched)
			r.mu.Unlock()
			stats, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%024x", n), "upstream_job_id": r.id})
			_ = r.p.send(&proto.HostMessage{Msg: &proto.HostMessage_LaunchResult{LaunchResult: &proto.LaunchResult{
				JobId: x.Launch.GetJobId(), RequestId: x.Launch.GetRequestId(), Stats: stats}}})
		case *proto.PluginMessage_Outcome:
			r.outcome(x.Outcome)
			return
		}
	}
}

func (r *Running) outcome(o *proto.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Panicked = o.GetPanicked()
	switch o.GetKind() {
	case proto.Outcome_KIND_SUCCESS:
		r.res.Kind = Succeeded
		if len(o.GetOutput()) > 0 {
			r.res.Output = json.RawMessage(o.GetOutput())
		}
		return
	case proto.Outcome_KIND_PERMANENT_ERROR:
		r.res.Kind = FailedPermanently
	case proto.Outcome_KIND_SNOOZE:
		r.res.Kind, r.res.SnoozeFor = Snoozed, time.Duration(o.GetSnoozeMillis())*time.Millisecond
	default:
		r.res.Kind = Failed
	}
	r.res.Err = errors.New(o.GetError())
	if r.res.Kind == Snoozed {
		r.res.Err = fmt.Errorf("snoozed for %s: %s", r.res.SnoozeFor, o.GetError())
	}
}

// Stop asks the job to stop, as `{"action":"stop"}` does.
func (r *Running) Stop() { r.signal(proto.StopReason_STOP_REASON_STOP) }

// Cancel asks the job to cancel, as `{"action":"cancel"}` does.
func (r *Running) Cancel() { r.signal(proto.StopReason_STOP_REASON_CANCEL) }

// Shutdown ends the job's context as the host's shutdown does.
func (r *Running) Shutdown() { r.signal(proto.StopReason_STOP_REASON_SHUTDOWN) }

func (r *Running) signal(reason proto.StopReason) {
	if err := r.p.send(&proto.HostMessage{Msg: &proto.HostMessage_Stop{Stop: &proto.Stop{JobId: r.id, Reason: reason}}}); err != nil {
		r.t.Errorf("sdktest: %s: %v", reason, err)
	}
}

// WaitCheckin waits until the job has checked in with message (a check-in
// before the call counts), ctx is done, or the job ends.
func (r *Running) WaitCheckin(ctx context.Context, message string) error {
	for {
		r.mu.Lock()
		seen := slices.Contains(r.res.CheckIns, message)
		changed := r.changed
		r.mu.Unlock()
		if seen {
			return nil
		}
		select {
		case <-changed:
		case <-r.done:
			r.mu.Lock()
			seen := slices.Contains(r.res.CheckIns, message)
			r.mu.Unlock()
			if seen {
				return nil
			}
			return fmt.Errorf("sdktest: the job ended without checking in %q", message)
		case <-ctx.Done():
			return fmt.Errorf("sdktest: waiting for check-in %q: %w", message, ctx.Err())
		}
	}
}

// Wait waits for the job to end (at most a minute) and reports what it did.
func (r *Running) Wait() Result {
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		r.t.Fatalf("sdktest: the job did not end within a minute")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res
}

// served is a plugin served in-process for one test, and its client.
type served struct {
	cfg       config
	client    proto.PluginClient
	session   proto.Plugin_SessionClient
	schema    *schema.Schema
	validates bool

	sendMu sync.Mutex
}

func (p *served) send(m *proto.HostMessage) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	return p.session.Send(m)
}

// serve serves job in-process through the sdk's real server, and connects
// to it as the host does: go-plugin's client, Describe, Configure, then
// the session. Everything stops when the test ends.
func serve(t testing.TB, job sdk.Job, opts []Option) *served {
	t.Helper()
	cfg := config{id: "000000000000000000000001", attempt: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		t.Fatal(strings.Join(cfg.errs, "; "))
	}
	var so core.ServeOptions
	for _, o := range cfg.plugin {
		if err := o(&so); err != nil {
			t.Fatalf("sdktest: the job cannot be served: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	serveErr := make(chan error, 1)
	so.Logger = hclog.NewNullLogger()
	so.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go func() { serveErr <- core.Serve(sdk.Jobs{jobName: job}, so) }()
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case err := <-serveErr:
		cancel()
		t.Fatalf("sdktest: the job cannot be served: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("sdktest: the plugin did not start serving")
	}
	// The plugin runs in this process: go-plugin must not watch a process
	// for it, only the server's end.
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inProcess{closed}, nil }
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: proto.Handshake,
		// A reattached client dispenses from Plugins, not VersionedPlugins.
		Plugins:          plugin.PluginSet{proto.PluginName: &hostPlugin{}},
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		GRPCDialOptions:  []grpc.DialOption{grpc.WithDefaultCallOptions(proto.GRPCCallOptions()...)},
	})
	p := &served{cfg: cfg}
	var session proto.Plugin_SessionClient
	var rpc plugin.ClientProtocol
	t.Cleanup(func() {
		if session != nil {
			_ = session.CloseSend()
		}
		// Close the connection, not the client: the client's Close asks
		// the server to shut down, which races with the test server's own
		// stop inside go-plugin.
		if g, ok := rpc.(*plugin.GRPCClient); ok {
			_ = g.Conn.Close()
		}
		client.Kill()
		cancel()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Error("sdktest: the plugin server did not stop")
		}
	})
	var err error
	if rpc, err = client.Client(); err != nil {
		t.Fatalf("sdktest: connect: %v", err)
	}
	raw, err := rpc.Dispense(proto.PluginName)
	if err != nil {
		t.Fatalf("sdktest: connect: %v", err)
	}
	p.client = raw.(proto.PluginClient)
	desc, err := p.client.Describe(context.Background(), &proto.DescribeRequest{})
	if err != nil || len(desc.GetJobs()) != 1 {
		t.Fatalf("sdktest: Describe = %v, %v", desc, err)
	}
	jt := desc.GetJobs()[0]
	p.validates = jt.GetValidates()
	if len(jt.GetParamsSchema()) > 0 {
		if p.schema, err = schema.Compile(jt.GetParamsSchema(), "parameter"); err != nil {
			t.Fatalf("sdktest: the job's parameter schema does not compile: %v", err)
		}
	}
	section := cfg.section
	if section != nil && len(desc.GetConfigSchema()) == 0 {
		t.Fatal("sdktest: WithConfig, but the plugin takes no configuration: pass the sdk.WithConfig of its main with WithPlugin")
	}
	if section == nil {
		section = []byte("{}")
	}
	conf, err := p.client.Configure(context.Background(), &proto.ConfigureRequest{Config: section})
	if err != nil {
		t.Fatalf("sdktest: Configure: %v", err)
	}
	if conf.GetError() != "" {
		t.Fatalf("sdktest: the plugin refused its configuration: %s", conf.GetError())
	}
	if session, err = p.client.Session(ctx); err != nil {
		t.Fatalf("sdktest: open the session: %v", err)
	}
	p.session = session
	return p
}

// inProcess is go-plugin's view of a plugin served in this process: it
// "exits" when its server stops.
type inProcess struct{ closed <-chan struct{} }

func (p inProcess) Wait(ctx context.Context) error {
	select {
	case <-p.closed:
	case <-ctx.Done():
	}
	return nil
}

func (inProcess) Kill(context.Context) error { return nil }
func (inProcess) ID() string                 { return "in-process" }

func (inProcess) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (inProcess) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// hostPlugin is the host side of go-plugin's GRPCPlugin.
type hostPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("sdktest: the host side serves nothing")
}

func (hostPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return proto.NewPluginClient(c), nil
}

func levelName(l proto.LogLevel) string {
	switch l {
	case proto.LogLevel_LOG_LEVEL_DEBUG:
		return "DEBUG"
	case proto.LogLevel_LOG_LEVEL_WARNING:
		return "WARNING"
	case proto.LogLevel_LOG_LEVEL_ERROR:
		return "ERROR"
	case proto.LogLevel_LOG_LEVEL_FATAL:
		return "FATAL"
	}
	return "INFO"
}
