package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/sdk/proto"
	"github.com/berth-dev/berth/sdk/schema"
)

// Options configure a Host.
type Options struct {
	// Dir is the plugins directory; every executable regular file in it
	// (not starting with ".") is a plugin.
	Dir string
	// Callbacks handle the calls of running jobs.
	Callbacks Callbacks
	Logger    hclog.Logger
	// StartTimeout bounds a plugin's start and its Describe (default 10s).
	StartTimeout time.Duration
	// KillTimeout bounds stopping a plugin process (default 5s).
	KillTimeout time.Duration
	// RestartBackoffMax caps the wait between restarts of a plugin that
	// keeps dying (default 30s).
	RestartBackoffMax time.Duration
	// GOMAXPROCS for plugin processes; 0 gives max(4, 2*NumCPU) so that a
	// stop reaches a job quickly even when the machine is busy.
	GOMAXPROCS int
	// Config holds the plugins' own configuration sections (JSON objects,
	// secrets resolved), keyed by a plugin's file name or by one of its job
	// names; each is handed to that plugin only, at every start.
	Config map[string][]byte
	// Reattach maps plugin file names to plugins started by hand in debug
	// mode, which the host attaches to instead of launching (see
	// proto.ReattachEnv).
	Reattach map[string]proto.Reattach
	// Checksums pins plugin files (by file name) to their SHA-256, as hex:
	// a file whose hash differs does not start, also at a restart, and the
	// process runs the very file that was hashed. RequireChecksums refuses
	// every file that has no pin.
	Checksums        map[string]string
	RequireChecksums bool
	// CallTimeout bounds a call into a plugin outside a run (Validate).
	// Default 10s.
	CallTimeout time.Duration
	// ProbeEvery is how often a plugin process is asked whether it
	// answers (go-plugin's gRPC health service); ProbeTimeout bounds the
	// answer. A process that fails ProbeFailures probes in a row is
	// reported unresponsive, killed and restarted (its running jobs fail
	// and are retried by their rules). Defaults 10s, 5s, 3.
	ProbeEvery    time.Duration
	ProbeTimeout  time.Duration
	ProbeFailures int
	// CheckinWindow is how long a run's check-ins and log lines wait for
	// more before they are recorded together (default 50ms; every one is
	// recorded, in order, and all before the run's outcome or a sub-job).
	CheckinWindow time.Duration
}

func (o *Options) defaults() {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.KillTimeout <= 0 {
		o.KillTimeout = 5 * time.Second
	}
	if o.RestartBackoffMax <= 0 {
		o.RestartBackoffMax = 30 * time.Second
	}
	if o.GOMAXPROCS <= 0 {
		o.GOMAXPROCS = max(4, 2*runtime.NumCPU())
	}
	if o.CheckinWindow <= 0 {
		o.CheckinWindow = 50 * time.Millisecond
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 10 * time.Second
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
	if o.ProbeFailures <= 0 {
		o.ProbeFailures = 3
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
}

// JobType is a job type served by a plugin.
type JobType struct {
	Name string
	// MaxFails as declared by the plugin (0 means the host default).
	MaxFails       uint
	ShouldRetry    bool
	MaxConcurrency uint
	// MaxSnoozes bounds the snoozes of one run (0 means the host default).
	MaxSnoozes uint
	Version    string
	// ParamsSchema is the JSON Schema of the parameters (nil: none).
	ParamsSchema []byte
	// Validates: the plugin checks more than the schema.
	Validates bool
	// Plugin is the path of the plugin binary that serves it.
	Plugin string

	schema *schema.Schema
}

// Host runs the plugins of one berth process.
type Host struct {
	opts   Options
	spawn  *spawner
	procs  []*proc
	byName map[string]*proc
	types  map[string]JobType
	failed []FailedPlugin
	sums   map[string][]byte // parsed Options.Checksums

	closeOnce sync.Once
}

// FailedPlugin is a file of the plugins directory that did not start as
// a plugin, and why.
type FailedPlugin struct {
	Path string
	Err  string
}

// Failed lists the files of the plugins directory left out at Load.
func (h *Host) Failed() []FailedPlugin { return slices.Clone(h.failed) }

// Plugin health states.
const (
	PluginUp           = "up"
	PluginUnresponsive = "unresponsive" // failed its probes: being restarted
	PluginDown         = "down"         // exited: being restarted
	PluginFailed       = "failed"       // did not start at Load
)

// PluginHealth is the state of one plugin file.
type PluginHealth struct {
	Name   string   `json:"name"`
	Status string   `json:"status"`
	PID    int      `json:"pid,omitempty"`
	Jobs   []string `json:"jobs,omitempty"`
	// Since is when the plugin entered its status (unix seconds).
	Since int64 `json:"since"`
	// Error says why a failed plugin did not start, or what the last
	// probe of an unresponsive one got.
	Error string `json:"error,omitempty"`
}

// Health reports every plugin file: the loaded ones, and those left out.
func (h *Host) Health() []PluginHealth {
	out := make([]PluginHealth, 0, len(h.procs)+len(h.failed))
	for _, p := range h.procs {
		out = append(out, p.health())
	}
	for _, f := range h.failed {
		out = append(out, PluginHealth{Name: filepath.Base(f.Path), Status: PluginFailed, Error: f.Err})
	}
	return out
}

// Errors of the Host.
var (
	// ErrUnknownJob: no plugin serves the job name.
	ErrUnknownJob = errors.New("no plugin serves this job name")
	// ErrPluginFailed: the plugin process died or broke the connection
	// while handling the call.
	ErrPluginFailed = errors.New("the plugin failed")
)

// ValidationError is a plugin's rejection of a job's parameters.
type ValidationError struct {
	Job    string
	Reason string
}

func (e *ValidationError) Error() string { return e.Reason }

// Load starts every plugin in opts.Dir and learns their job types. A file
// that does not start as a plugin is logged and left out (Failed lists
// it). A plugin that refuses its configuration, two plugins serving one
// job name, a plugin_config section that names no plugin, or a directory
// where no plugin starts is an error; the plugins started so far are
// stopped.
func Load(ctx context.Context, opts Options) (*Host, error) {
	opts.defaults()
	if opts.Callbacks == nil {
		return nil, errors.New("pluginhost: Options.Callbacks is required")
	}
	sums, err := parseChecksums(opts.Checksums)
	if err != nil {
		return nil, err
	}
	paths, err := discover(opts.Dir)
	if err != nil && len(opts.Reattach) == 0 {
		return nil, err
	}
	for name := range sums {
		if !slices.Contains(paths, filepath.Join(opts.Dir, name)) && !slices.ContainsFunc(paths, func(p string) bool { return filepath.Base(p) == name }) {
			return nil, fmt.Errorf("pluginhost: plugins.sha256.%s names no executable file in plugins_dir %q", name, opts.Dir)
		}
	}
	// A plugin started by hand in debug mode may have no file here.
	for name := range opts.Reattach {
		p := filepath.Join(opts.Dir, name)
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	h := &Host{opts: opts, spawn: newSpawner(), byName: map[string]*proc{}, types: map[string]JobType{}, sums: sums}

	type started struct {
		p   *proc
		err error
	}
	results := make([]started, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newProc(h, path)
			results[i] = started{p: p, err: p.start(ctx)}
		}()
	}
	wg.Wait()

	// A file that does not start as a plugin (a stray executable, a
	// plugin of another protocol, one that refuses its configuration) is
	// logged and left out; the others are served. Nothing that starts is
	// an error.
	var errs []error
	for _, r := range results {
		if isConfigError(r.err) {
			h.procs = append(h.procs, r.p)
			errs = append(errs, r.err)
			continue
		}
		if r.err != nil {
			errs = append(errs, r.err)
			h.failed = append(h.failed, FailedPlugin{Path: r.p.path, Err: r.err.Error()})
			opts.Logger.Error("plugin left out: it did not start", "plugin", r.p.path, "error", r.err)
			r.p.close()
			continue
		}
		h.procs = append(h.procs, r.p)
	}
	if len(h.procs) == 0 {
		h.Close()
		return nil, fmt.Errorf("pluginhost: no plugin in %s started: %w", opts.Dir, errors.Join(errs...))
	}
	for _, err := range errs {
		if isConfigError(err) {
			h.Close()
			return nil, err
		}
	}
	if err := errors.Join(h.register(), h.checkConfig()); err != nil {
		h.Close()
		return nil, err
	}
	for _, p := range h.procs {
		p.watch()
	}
	return h, nil
}

// discover lists the plugin binaries in dir, sorted.
func discover(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: read plugins_dir %q: %w (build the plugins with `make build` or set plugins_dir)", dir, err)
	}
	var paths []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue
		}
		abs, err := filepath.Abs(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("pluginhost: plugin %q: %w", e.Name(), err)
		}
		paths = append(paths, abs)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("pluginhost: no executable plugin in plugins_dir %q (build them with `make build` or set plugins_dir)", dir)
	}
	sort.Strings(paths)
	return paths, nil
}

// register records the job types of every plugin; a name served twice is
// an error naming both plugin files.
func (h *Host) register() error {
	var errs []error
	for _, p := range h.procs {
		for _, t := range p.types {
			if other, dup := h.byName[t.Name]; dup {
				errs = append(errs, fmt.Errorf("pluginhost: job name %q is served by both %s and %s: remove one of them from plugins_dir", t.Name, other.path, p.path))
				continue
			}
			h.byName[t.Name] = p
			h.types[t.Name] = t
		}
	}
	return errors.Join(errs...)
}

// checkConfig refuses a plugin_config section that names no plugin.
func (h *Host) checkConfig() error {
	var errs []error
	for key := range h.opts.Config {
		_, isJob := h.byName[key]
		isPlugin := slices.ContainsFunc(h.procs, func(p *proc) bool { return filepath.Base(p.path) == key })
		if !isJob && !isPlugin {
			errs = append(errs, fmt.Errorf("pluginhost: plugin_config.%s names no plugin file in plugins_dir %q and no job name it serves", key, h.opts.Dir))
		}
	}
	return errors.Join(errs...)
}

// JobTypes lists the job types of all plugins, sorted by name.
func (h *Host) JobTypes() []JobType {
	out := make([]JobType, 0, len(h.types))
	for _, t := range h.types {
		out = append(out, t)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// JobType returns the job type called name.
func (h *Host) JobType(name string) (JobType, bool) {
	t, ok := h.types[name]
	return t, ok
}

func (h *Host) procFor(name string) (*proc, error) {
	p, ok := h.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownJob, name)
	}
	return p, nil
}

// Validate checks params (a JSON object) for the job name: against the
// job type's JSON Schema, then, when the plugin declares it validates, by
// the plugin's Validate. A rejection is a *ValidationError.
func (h *Host) Validate(ctx context.Context, name string, params []byte) error {
	p, err := h.procFor(name)
	if err != nil {
		return err
	}
	jt := h.types[name]
	if jt.schema != nil {
		if err := jt.schema.Check(params); err != nil {
			return &ValidationError{Job: name, Reason: err.Error()}
		}
	}
	if !jt.Validates {
		return nil
	}
	// A plugin that does not answer must not hold the submission.
	ctx, cancel := context.WithTimeoutCause(ctx, h.opts.CallTimeout,
		fmt.Errorf("%w: plugin %s did not answer Validate within %s", ErrPluginFailed, filepath.Base(p.path), h.opts.CallTimeout))
	defer cancel()
	c, err := p.client(ctx)
	if err != nil {
		return err
	}
	resp, err := c.rpc.Validate(ctx, &proto.ValidateRequest{JobName: name, Parameters: params}, proto.GRPCCallOptions()...)
	if err != nil {
		return p.callError(ctx, c, "Validate", err)
	}
	if resp.GetError() != "" {
		return &ValidationError{Job: name, Reason: resp.GetError()}
	}
	return nil
}

// RunRequest is one attempt of a job.
type RunRequest struct {
	Name       string
	JobID      string
	Revision   int64
	Attempt    int
	Parameters []byte
	Properties map[string]string
	// Deadline, when set, ends the job's context in the plugin then.
	Deadline time.Time
	// Stop, when set, is closed when the job must end (a stop, a cancel,
	// or the host giving the run up); StopReason then tells the plugin
	// why. Run tells the plugin right after the start, however early
	// Stop was closed, so that a stop that comes before the plugin has the
	// job still ends it at once.
	Stop       <-chan struct{}
	StopReason func() proto.StopReason
}

// RunKind is how an attempt ended inside the plugin.
type RunKind int

// Run kinds.
const (
	RunSucceeded RunKind = iota
	RunFailed
	RunFailedPermanently
	RunSnoozed
)

// RunResult is how an attempt ended inside the plugin.
type RunResult struct {
	Kind RunKind
	// Err is why the run failed or snoozed.
	Err string
	// Panicked: the job's Run panicked (the plugin survived it).
	Panicked bool
	// Output is the JSON a successful run produced (nil: none).
	Output []byte
	// Snooze is the wait a snoozed run asked for.
	Snooze time.Duration
}

// MaxOutputBytes bounds a run's output.
const MaxOutputBytes = 1 << 20

// Run runs one attempt on the plugin's session and returns when the job's
// outcome arrives, the plugin fails (ErrPluginFailed), or ctx is done
// (ctx's cause; the plugin is told to end the job). The run's check-ins,
// log lines and sub-job requests go to the Callbacks, in order, from the
// goroutine that called Run; check-ins in batches (Options.CheckinWindow).
func (h *Host) Run(ctx context.Context, req RunRequest) (RunResult, error) {
	p, err := h.procFor(req.Name)
	if err != nil {
		return RunResult{}, err
	}
	c, err := p.client(ctx)
	if err != nil {
		return RunResult{}, err
	}
	s := c.session
	in, err := s.begin(req.JobID, h.opts.CheckinWindow)
	if err != nil {
		return RunResult{}, fmt.Errorf("pluginhost: run %s in plugin %s: %w", req.JobID, filepath.Base(p.path), err)
	}
	defer s.finish(req.JobID)
	start := &proto.Start{JobId: req.JobID, JobName: req.Name, Parameters: req.Parameters, Attempt: uint32(req.Attempt),
		Properties: req.Properties, Revision: req.Revision}
	if !req.Deadline.IsZero() {
		start.DeadlineUnixMs = req.Deadline.UnixMilli()
	}
	if err := s.send(&proto.HostMessage{Msg: &proto.HostMessage_Start{Start: start}}); err != nil {
		return RunResult{}, p.callError(ctx, c, "Run", err)
	}
	// The run's own callbacks outlive a stop (its last lines still go to
	// the log), but not the host.
	r := &run{h: h, s: s, ctx: context.WithoutCancel(ctx), jobID: req.JobID}
	stop := req.Stop
	for {
		msgs, due := in.take()
		if res, done := r.handle(msgs); done {
			return res, nil
		}
		if due {
			r.flush()
		}
		select {
		case <-stop:
			// After the start on the same stream: the plugin has the job.
			stop = nil
			reason := proto.StopReason_STOP_REASON_STOP
			if req.StopReason != nil {
				reason = req.StopReason()
			}
			if err := s.send(&proto.HostMessage{Msg: &proto.HostMessage_Stop{Stop: &proto.Stop{JobId: req.JobID, Reason: reason}}}); err != nil {
				h.opts.Logger.Debug("could not tell the plugin to stop the job", "job_id", req.JobID, "error", err)
			}
		case <-in.notify:
		case <-s.dead:
			msgs, _ := in.take()
			if res, done := r.handle(msgs); done {
				return res, nil
			}
			r.flush()
			return RunResult{}, p.callError(ctx, c, "Run", s.err)
		case <-ctx.Done():
			r.flush()
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				_ = s.send(&proto.HostMessage{Msg: &proto.HostMessage_Stop{Stop: &proto.Stop{JobId: req.JobID, Reason: proto.StopReason_STOP_REASON_SHUTDOWN}}})
			}
			return RunResult{}, p.callError(ctx, c, "Run", ctx.Err())
		}
	}
}

// run is the host's side of one run while Run waits for its outcome.
type run struct {
	h     *Host
	s     *session
	ctx   context.Context
	jobID string

	pending []string // check-ins not recorded yet
}

// handle passes a run's messages on, in order; done when one was the
// outcome. Check-ins are kept until the window passed (the inbox says
// when), so that a job that checks in often costs one write per window,
// not per check-in; they are recorded before a sub-job is launched and
// before the outcome.
func (r *run) handle(msgs []*proto.PluginMessage) (RunResult, bool) {
	cb := r.h.opts.Callbacks
	for _, m := range msgs {
		switch x := m.GetMsg().(type) {
		case *proto.PluginMessage_Checkin:
			r.pending = append(r.pending, x.Checkin.GetMessage())
		case *proto.PluginMessage_Logs:
			if err := cb.Log(r.ctx, r.jobID, x.Logs.GetEntries()); err != nil {
				r.h.opts.Logger.Debug("log lines were not recorded", "job_id", r.jobID, "error", err)
			}
		case *proto.PluginMessage_Launch:
			r.flush()
			res := &proto.LaunchResult{JobId: r.jobID, RequestId: x.Launch.GetRequestId()}
			stats, err := cb.LaunchJob(r.ctx, r.jobID, x.Launch.GetRequest())
			if err != nil {
				res.Error = fmt.Sprintf("launch sub-job: %v", err)
			} else {
				res.Stats = stats
			}
			_ = r.s.send(&proto.HostMessage{Msg: &proto.HostMessage_LaunchResult{LaunchResult: res}})
		case *proto.PluginMessage_Outcome:
			r.flush()
			return outcomeOf(x.Outcome), true
		}
	}
	return RunResult{}, false
}

// flush records the pending check-ins in one step.
func (r *run) flush() {
	if len(r.pending) == 0 {
		return
	}
	if err := r.h.opts.Callbacks.Checkin(r.ctx, r.jobID, r.pending...); err != nil {
		r.h.opts.Logger.Warn("check-ins were not recorded", "job_id", r.jobID, "count", len(r.pending), "error", err)
	}
	r.pending = nil
}

func outcomeOf(o *proto.Outcome) RunResult {
	r := RunResult{Err: o.GetError(), Panicked: o.GetPanicked()}
	switch o.GetKind() {
	case proto.Outcome_KIND_SUCCESS:
		r.Kind, r.Err = RunSucceeded, ""
		if out := o.GetOutput(); len(out) > MaxOutputBytes {
			r.Kind, r.Err = RunFailed, fmt.Sprintf("the job's output is %d bytes, more than the %d allowed", len(out), MaxOutputBytes)
		} else if len(out) > 0 {
			if !json.Valid(out) {
				r.Kind, r.Err = RunFailed, "the job's output is not JSON"
			} else {
				r.Output = out
			}
		}
	case proto.Outcome_KIND_PERMANENT_ERROR:
		r.Kind = RunFailedPermanently
	case proto.Outcome_KIND_SNOOZE:
		r.Kind, r.Snooze = RunSnoozed, time.Duration(o.GetSnoozeMillis())*time.Millisecond
	default:
		r.Kind = RunFailed
		if r.Err == "" {
			r.Err = "the job failed without saying why"
		}
	}
	return r
}

// Signal tells a running job to stop or cancel; the plugin ends the job's
// context. found is false when the job is not running in the plugin.
func (h *Host) Signal(_ context.Context, name, jobID string, reason proto.StopReason) (found bool, err error) {
	p, err := h.procFor(name)
	if err != nil {
		return false, err
	}
	c, err := p.current()
	if c == nil {
		return false, err
	}
	if !c.session.has(jobID) {
		return false, nil
	}
	if err := c.session.send(&proto.HostMessage{Msg: &proto.HostMessage_Stop{Stop: &proto.Stop{JobId: jobID, Reason: reason}}}); err != nil {
		return false, fmt.Errorf("%w: signal %s: %v", ErrPluginFailed, filepath.Base(p.path), err)
	}
	return true, nil
}

// PIDs lists the process IDs of the running plugin processes.
func (h *Host) PIDs() []int {
	var out []int
	for _, p := range h.procs {
		if pid := p.pid(); pid > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// Close stops every plugin process, each within KillTimeout. Jobs still
// running in them fail; stop them first. Safe to call twice.
func (h *Host) Close() {
	h.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, p := range h.procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.close()
			}()
		}
		wg.Wait()
		h.spawn.close()
	})
}
