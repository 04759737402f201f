package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/sdk/proto"
	"github.com/berth-dev/berth/sdk/schema"
)

// restartBackoffMin is the first wait before restarting a dead plugin.
const restartBackoffMin = 100 * time.Millisecond

// stableAfter is how long a plugin must have run for its restart backoff
// to start again from restartBackoffMin.
const stableAfter = time.Minute

// proc is one plugin binary and its current process.
type proc struct {
	h     *Host
	path  string
	log   hclog.Logger
	types []JobType

	mu      sync.Mutex
	inst    *instance     // nil while the process is down
	up      chan struct{} // closed when inst is set
	closing chan struct{}
	closed  bool
	watched bool          // supervise runs
	done    chan struct{} // closed when supervise returns

	status      string    // a Plugin* health state
	statusSince time.Time // when it entered it
	statusErr   string
}

// instance is one process of a plugin.
type instance struct {
	client  *plugin.Client
	pc      *pluginClient
	runner  *procRunner // nil for a plugin attached to (debug mode)
	pid     int
	started time.Time
}

func newProc(h *Host, path string) *proc {
	return &proc{
		h: h, path: path, status: PluginDown, statusSince: time.Now(),
		log:     h.opts.Logger.Named("plugin." + filepath.Base(path)),
		up:      make(chan struct{}),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// start launches the first process and learns the job types.
func (p *proc) start(ctx context.Context) error {
	inst, types, err := p.launch(ctx)
	if err != nil {
		return err
	}
	p.types = types
	p.setUp(inst)
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name
	}
	p.log.Info("plugin started", "path", p.path, "pid", inst.pid, "jobs", strings.Join(names, ","))
	return nil
}

// pluginEnv is the environment of a plugin process: the host's, without
// the host's own secrets and settings, plus GOMAXPROCS.
func (p *proc) pluginEnv(goPluginEnv []string) []string {
	var env []string
	for _, kv := range goPluginEnv {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CORE_SECRET" || k == "GOMAXPROCS" || strings.HasPrefix(k, "JOB_SERVICE_") || strings.HasPrefix(k, "BERTH_") && !strings.HasPrefix(k, "BERTH_PLUGIN_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOMAXPROCS="+strconv.Itoa(p.h.opts.GOMAXPROCS))
}

// checkIntegrity refuses a plugin file anyone may change, or one whose
// SHA-256 is not the pinned one (or that has no pin when pins are
// required). A pinned file is returned open: the process runs it.
func (p *proc) checkIntegrity() (*os.File, error) {
	if err := checkFile(p.path); err != nil {
		return nil, err
	}
	want, pinned := p.h.sums[filepath.Base(p.path)]
	if !pinned {
		if p.h.opts.RequireChecksums {
			return nil, fmt.Errorf("plugins.require_sha256 is set and plugins.sha256 has no pin for %s (sha256sum prints it)", filepath.Base(p.path))
		}
		return nil, nil
	}
	return openPinned(p.path, want)
}

// configError marks a plugin that did start but whose configuration is
// wrong: the operator's error, which stops the host, unlike a file that
// is no plugin.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

func isConfigError(err error) bool {
	var c configError
	return errors.As(err, &c)
}

// launch starts a process (or attaches to one started by hand in debug
// mode), connects, learns its job types, hands it its configuration and
// opens its session.
func (p *proc) launch(ctx context.Context) (*instance, []JobType, error) {
	var pr *procRunner
	set := plugin.PluginSet{proto.PluginName: grpcPlugin{}}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  proto.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{proto.ProtocolVersion: set},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     p.h.opts.StartTimeout,
		Logger:           p.log,
		SyncStdout:       &lineLogger{log: p.log, stream: "stdout"},
		SyncStderr:       &lineLogger{log: p.log, stream: "stderr"},
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(proto.GRPCCallOptions()...),
		},
	}
	if ra, ok := p.h.opts.Reattach[filepath.Base(p.path)]; ok {
		rc, err := ra.Config()
		if err != nil {
			return nil, nil, fmt.Errorf("pluginhost: plugin %s: %s: %w", p.path, proto.ReattachEnv, err)
		}
		// A reattached client dispenses from Plugins.
		cfg.Reattach, cfg.Plugins = rc, set
	} else {
		pinned, err := p.checkIntegrity()
		if err != nil {
			return nil, nil, fmt.Errorf("pluginhost: plugin %s: refused: %w", p.path, err)
		}
		if pinned != nil {
			defer pinned.Close() // closed once started; here on every other way out
		}
		cfg.RunnerFunc = func(_ hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
			r, err := newProcRunner(p.path, pinned, p.pluginEnv(append(os.Environ(), cmd.Env...)), p.h.spawn, p.log)
			pr = r
			return r, err
		}
		cfg.SkipHostEnv, cfg.AutoMTLS = true, true
	}
	client := plugin.NewClient(cfg)
	fail := func(what string, err error) (*instance, []JobType, error) {
		inst := &instance{client: client, runner: pr}
		p.kill(inst)
		return nil, nil, fmt.Errorf("pluginhost: plugin %s: %s: %w", p.path, what, err)
	}
	rpc, err := client.Client()
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
			return fail("start", fmt.Errorf("it speaks another Berth plugin protocol than this host's version %d (%v): rebuild it with the current sdk", proto.ProtocolVersion, err))
		}
		return fail("start", err)
	}
	raw, err := rpc.Dispense(proto.PluginName)
	if err != nil {
		return fail("connect", err)
	}
	pc, ok := raw.(*pluginClient)
	if !ok {
		return fail("connect", fmt.Errorf("unexpected client type %T", raw))
	}
	callCtx, cancel := context.WithTimeout(ctx, p.h.opts.StartTimeout)
	defer cancel()
	desc, err := pc.rpc.Describe(callCtx, &proto.DescribeRequest{})
	if err != nil {
		return fail("Describe", err)
	}
	types, err := p.jobTypes(desc)
	if err != nil {
		return fail("Describe", err)
	}
	section, err := p.section(types)
	if err != nil {
		return fail("configuration", configError{err})
	}
	conf, err := pc.rpc.Configure(callCtx, &proto.ConfigureRequest{Config: section})
	if err != nil {
		return fail("Configure", err)
	}
	if conf.GetError() != "" {
		return fail("configuration", configError{fmt.Errorf("the plugin refused its section of plugin_config: %s", conf.GetError())})
	}
	// What a job type declares may depend on the configuration (a
	// webhook's retries): ask again; the job names must not change.
	if string(section) != "{}" {
		again, err := pc.rpc.Describe(callCtx, &proto.DescribeRequest{})
		if err != nil {
			return fail("Describe", err)
		}
		configured, err := p.jobTypes(again)
		if err != nil {
			return fail("Describe", err)
		}
		if !sameNames(types, configured) {
			return fail("Describe", fmt.Errorf("the plugin's job types changed with its configuration: %s, then %s", names(types), names(configured)))
		}
		types = configured
	}
	// The session lasts as long as the process.
	if pc.session, err = openSession(context.Background(), pc.rpc); err != nil {
		return fail("Session", err)
	}
	if desc.GetSdk() != "" {
		p.log.Debug("plugin described", "sdk", desc.GetSdk())
	}
	inst := &instance{client: client, pc: pc, runner: pr, started: time.Now()}
	switch {
	case pr != nil:
		inst.pid = pr.pid
	case cfg.Reattach != nil:
		inst.pid = cfg.Reattach.Pid
	}
	return inst, types, nil
}

func names(types []JobType) string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = t.Name
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func sameNames(a, b []JobType) bool { return names(a) == names(b) }

// section is the plugin's configuration: the section under its file name
// or under one of its job names (not both), or {}.
func (p *proc) section(types []JobType) ([]byte, error) {
	keys := []string{filepath.Base(p.path)}
	for _, t := range types {
		keys = append(keys, t.Name)
	}
	var found string
	var raw []byte
	for _, k := range keys {
		if v, ok := p.h.opts.Config[k]; ok {
			if found != "" {
				return nil, fmt.Errorf("plugin_config has sections %q and %q for the same plugin: keep one", found, k)
			}
			found, raw = k, v
		}
	}
	if raw == nil {
		raw = []byte("{}")
	}
	return raw, nil
}

func (p *proc) jobTypes(desc *proto.DescribeResponse) ([]JobType, error) {
	if len(desc.GetJobs()) == 0 {
		return nil, errors.New("the plugin serves no job")
	}
	var types []JobType
	for _, j := range desc.GetJobs() {
		if j.GetName() == "" {
			return nil, errors.New("the plugin declares a job with an empty name")
		}
		t := JobType{
			Name: j.GetName(), MaxFails: uint(j.GetMaxFails()), ShouldRetry: j.GetShouldRetry(),
			MaxConcurrency: uint(j.GetMaxConcurrency()), MaxSnoozes: uint(j.GetMaxSnoozes()), Version: j.GetVersion(),
			ParamsSchema: j.GetParamsSchema(), Validates: j.GetValidates(), Plugin: p.path,
		}
		if len(t.ParamsSchema) > 0 {
			s, err := schema.Compile(t.ParamsSchema, "parameter")
			if err != nil {
				return nil, fmt.Errorf("job %s declares a parameter schema that does not compile: %w", t.Name, err)
			}
			t.schema = s
		}
		types = append(types, t)
	}
	return types, nil
}

func (p *proc) setUp(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inst = inst
	close(p.up)
	p.setStatus(PluginUp, "")
}

// setStatus records the health state; p.mu is held.
func (p *proc) setStatus(status, why string) {
	if p.status != status {
		p.status, p.statusSince = status, time.Now()
	}
	p.statusErr = why
}

func (p *proc) health() PluginHealth {
	p.mu.Lock()
	defer p.mu.Unlock()
	hl := PluginHealth{Name: filepath.Base(p.path), Status: p.status, Since: p.statusSince.Unix(), Error: p.statusErr}
	if p.inst != nil {
		hl.PID = p.inst.pid
	}
	for _, t := range p.types {
		hl.Jobs = append(hl.Jobs, t.Name)
	}
	return hl
}

// setDown marks the process down if inst is still the current one (nil
// matches any) and returns the instance it took down.
func (p *proc) setDown(inst *instance) *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil || inst != nil && p.inst != inst {
		return nil
	}
	cur := p.inst
	p.inst = nil
	p.up = make(chan struct{})
	if p.status == PluginUp {
		p.setStatus(PluginDown, "")
	}
	return cur
}

// current returns the running process, or an error while it is down.
func (p *proc) current() (*pluginClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return nil, fmt.Errorf("%w: plugin %s is restarting", ErrPluginFailed, filepath.Base(p.path))
	}
	return p.inst.pc, nil
}

// client waits (bounded) until the plugin is up.
func (p *proc) client(ctx context.Context) (*pluginClient, error) {
	limit := time.NewTimer(2*p.h.opts.StartTimeout + p.h.opts.RestartBackoffMax)
	defer limit.Stop()
	for {
		p.mu.Lock()
		inst, up := p.inst, p.up
		p.mu.Unlock()
		if inst != nil {
			select {
			case <-inst.pc.exited:
				// Dead, and its supervisor has not noticed yet.
				p.setDown(inst)
				continue
			default:
				return inst.pc, nil
			}
		}
		select {
		case <-up:
		case <-p.closing:
			return nil, fmt.Errorf("%w: plugin %s is shutting down", ErrPluginFailed, filepath.Base(p.path))
		case <-limit.C:
			return nil, fmt.Errorf("%w: plugin %s did not come back after a crash; see the host log", ErrPluginFailed, filepath.Base(p.path))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// callError explains a failed call: the caller's context, or the plugin.
func (p *proc) callError(ctx context.Context, c *pluginClient, method string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("pluginhost: %s of plugin %s: %w", method, filepath.Base(p.path), context.Cause(ctx))
	}
	select {
	case <-c.exited:
		return fmt.Errorf("%w: plugin %s exited during %s", ErrPluginFailed, filepath.Base(p.path), method)
	case <-time.After(100 * time.Millisecond):
		// The process may be on its way out; give its exit a moment to show.
	}
	return fmt.Errorf("%w: %s of plugin %s: %v", ErrPluginFailed, method, filepath.Base(p.path), err)
}

// watch starts supervise.
func (p *proc) watch() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.inst == nil {
		return
	}
	p.watched = true
	go p.supervise()
}

// supervise restarts the plugin whenever its process exits, until close.
func (p *proc) supervise() {
	defer close(p.done)
	restart := backoff.Policy{Base: restartBackoffMin, Max: p.h.opts.RestartBackoffMax, Jitter: 0.1}
	failures := 0
	for {
		p.mu.Lock()
		inst := p.inst
		p.mu.Unlock()
		if !p.watchProcess(inst) {
			return
		}
		select {
		case <-p.closing:
			return
		default:
		}
		p.setDown(inst)
		if time.Since(inst.started) > stableAfter {
			failures = 0
		}
		failures++
		wait := restart.Delay(failures)
		p.log.Error("plugin process exited unexpectedly; its running jobs fail and it is restarted", "pid", inst.pid, "backoff", wait)
		p.kill(inst)
		for {
			select {
			case <-time.After(wait):
			case <-p.closing:
				return
			}
			next, types, err := p.launch(context.Background())
			if err != nil {
				failures++
				wait = restart.Delay(failures)
				p.log.Error("plugin restart failed", "error", err, "next_attempt_in", wait)
				continue
			}
			if !sameTypes(p.types, types) {
				p.log.Warn("the restarted plugin declares other job types than at host start; the host keeps the types it started with until it restarts")
			}
			p.setUp(next)
			p.log.Info("plugin restarted", "pid", next.pid)
			break
		}
	}
}

// watchProcess waits until inst's process exits (true) or the plugin is
// closed (false), probing it meanwhile: a process that fails
// ProbeFailures probes in a row is killed, so that it exits and is
// restarted.
func (p *proc) watchProcess(inst *instance) bool {
	tick := time.NewTicker(p.h.opts.ProbeEvery)
	defer tick.Stop()
	failed := 0
	for {
		select {
		case <-inst.pc.exited:
			return true
		case <-p.closing:
			return false
		case <-tick.C:
		}
		err := p.probe(inst)
		if err == nil {
			failed = 0
			continue
		}
		failed++
		p.log.Warn("plugin did not answer its health probe", "pid", inst.pid, "failures", failed, "error", err)
		if failed < p.h.opts.ProbeFailures {
			continue
		}
		p.mu.Lock()
		p.setStatus(PluginUnresponsive, err.Error())
		p.mu.Unlock()
		p.log.Error("plugin stopped answering; killing it so that it is restarted (its running jobs fail)", "pid", inst.pid)
		// It answers nothing, a graceful stop included: kill it at once
		// (not a plugin attached to in debug mode, which is the author's).
		if inst.runner != nil && inst.pid > 0 {
			if proc, err := os.FindProcess(inst.pid); err == nil {
				_ = proc.Kill()
			}
		}
		p.kill(inst)
		select {
		case <-inst.pc.exited:
			return true
		case <-p.closing:
			return false
		}
	}
}

// probe asks the process's gRPC health service whether it serves.
func (p *proc) probe(inst *instance) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.h.opts.ProbeTimeout)
	defer cancel()
	resp, err := inst.pc.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	if err != nil {
		return err
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", st)
	}
	return nil
}

func sameTypes(a, b []JobType) bool {
	return slices.EqualFunc(a, b, func(x, y JobType) bool {
		return x.Name == y.Name && x.MaxFails == y.MaxFails && x.ShouldRetry == y.ShouldRetry && x.MaxConcurrency == y.MaxConcurrency &&
			x.MaxSnoozes == y.MaxSnoozes && x.Version == y.Version && x.Validates == y.Validates && bytes.Equal(x.ParamsSchema, y.ParamsSchema)
	})
}

// kill stops a process within KillTimeout: gracefully first (go-plugin
// asks the plugin to exit), then with SIGKILL to its process group.
func (p *proc) kill(inst *instance) {
	if inst == nil || inst.client == nil {
		return
	}
	if inst.pc != nil && inst.pc.session != nil {
		inst.pc.session.close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		inst.client.Kill()
	}()
	select {
	case <-done:
		return
	case <-time.After(p.h.opts.KillTimeout):
	}
	p.log.Warn("plugin did not exit within kill_timeout; killing its process group", "timeout", p.h.opts.KillTimeout)
	if inst.runner != nil {
		if err := inst.runner.Kill(context.Background()); err != nil {
			p.log.Error("kill plugin", "error", err)
		}
	}
	select {
	case <-done:
	case <-time.After(p.h.opts.KillTimeout):
		p.log.Error("go-plugin did not release the plugin after SIGKILL; moving on")
	}
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil || p.inst.runner == nil {
		return 0
	}
	return p.inst.pid
}

// close stops supervising and stops the process. Safe to call twice.
func (p *proc) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.closing)
	watched := p.watched
	p.mu.Unlock()
	if watched {
		<-p.done
	}
	p.kill(p.setDown(nil))
}

// lineLogger logs what a plugin writes to its os.Stdout / os.Stderr (which
// go-plugin forwards over gRPC), one entry per line.
type lineLogger struct {
	log    hclog.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineLogger) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.log.Info(string(w.buf[:i]), "stream", w.stream)
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxStderrLine {
		w.log.Info(string(w.buf), "stream", w.stream)
		w.buf = w.buf[:0]
	}
	return len(b), nil
}
