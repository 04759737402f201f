package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/sdk/proto"
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
	Version        string
	// Plugin is the path of the plugin binary that serves it.
	Plugin string
}

// Host runs the plugins of one berth process.
type Host struct {
	opts   Options
	spawn  *spawner
	procs  []*proc
	byName map[string]*proc
	types  map[string]JobType

	closeOnce sync.Once
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

// Load starts every plugin in opts.Dir and learns their job types. Two
// plugins serving one job name, a plugin that does not start, or an empty
// directory is an error; the plugins started so far are stopped.
func Load(ctx context.Context, opts Options) (*Host, error) {
	opts.defaults()
	if opts.Callbacks == nil {
		return nil, errors.New("pluginhost: Options.Callbacks is required")
	}
	paths, err := discover(opts.Dir)
	if err != nil {
		return nil, err
	}
	h := &Host{opts: opts, spawn: newSpawner(), byName: map[string]*proc{}, types: map[string]JobType{}}

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

	var errs []error
	for _, r := range results {
		h.procs = append(h.procs, r.p)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, h.register())
	}
	if err := errors.Join(errs...); err != nil {
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

// Validate asks the plugin whether params (a JSON object) are valid for the
// job name. A rejection is a *ValidationError.
func (h *Host) Validate(ctx context.Context, name string, params []byte) error {
	p, err := h.procFor(name)
	if err != nil {
		return err
	}
	c, err := p.client(ctx)
	if err != nil {
		return err
	}
	resp, err := c.job.Validate(ctx, &proto.ValidateRequest{JobName: name, Parameters: params}, proto.GRPCCallOptions()...)
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
	Parameters []byte
	Properties map[string]string
}

// RunResult is how an attempt ended inside the plugin.
type RunResult struct {
	// Err is the job's error; empty on success.
	Err string
	// Panicked: the job's Run panicked (the plugin survived it).
	Panicked bool
}

// Run runs one attempt and returns when the job's Run returns, the plugin
// fails (ErrPluginFailed), or ctx is done (ctx's error: the call is
// cancelled in the plugin).
func (h *Host) Run(ctx context.Context, req RunRequest) (RunResult, error) {
	p, err := h.procFor(req.Name)
	if err != nil {
		return RunResult{}, err
	}
	c, err := p.client(ctx)
	if err != nil {
		return RunResult{}, err
	}
	untrack := c.callbacks.track(req.JobID)
	defer untrack()
	resp, err := c.job.Run(ctx, &proto.RunRequest{
		JobName: req.Name, JobId: req.JobID, Parameters: req.Parameters, Properties: req.Properties,
	}, proto.GRPCCallOptions()...)
	if err != nil {
		return RunResult{}, p.callError(ctx, c, "Run", err)
	}
	return RunResult{Err: resp.GetError(), Panicked: resp.GetPanicked()}, nil
}

// Signal tells a running job that it is about to be stopped or cancelled;
// the plugin ends the job's context. found is false when the job is not
// running in the plugin.
func (h *Host) Signal(ctx context.Context, name, jobID string, cmd proto.OPCommand) (found bool, err error) {
	p, err := h.procFor(name)
	if err != nil {
		return false, err
	}
	c, err := p.current()
	if c == nil {
		return false, err
	}
	resp, err := c.job.Signal(ctx, &proto.SignalRequest{JobId: jobID, Command: cmd}, proto.GRPCCallOptions()...)
	if err != nil {
		return false, p.callError(ctx, c, "Signal", err)
	}
	return resp.GetFound(), nil
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
