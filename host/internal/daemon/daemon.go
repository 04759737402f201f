package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/netutil"

	"github.com/berth-dev/berth/host/internal/api"
	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/dashboard"
	"github.com/berth-dev/berth/host/internal/due"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/hook"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/jobs"
	"github.com/berth-dev/berth/host/internal/metrics"
	"github.com/berth-dev/berth/host/internal/periodic"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/pubsub"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/reaper"
	"github.com/berth-dev/berth/host/internal/redisx"
	"github.com/berth-dev/berth/host/internal/runner"
	"github.com/berth-dev/berth/host/internal/store"
)

// Options configure a Host.
type Options struct {
	Config *config.Config
	Logger hclog.Logger
	// Stdout receives the STD_OUTPUT job log (default io.Discard).
	Stdout io.Writer
	// Listener, when set, serves the API instead of listening on the
	// configured port (tests pass a listener on 127.0.0.1:0).
	Listener net.Listener
	// MetricsListener, when set, serves the metrics (metric.enabled)
	// instead of listening on metric.port.
	MetricsListener net.Listener
}

// Host is a running Berth host.
type Host struct {
	opts Options
	cfg  *config.Config
	log  hclog.Logger

	front         *frontHandler
	metrics       *metrics.Metrics
	metricsServer *http.Server
	metricsAddr   net.Addr

	backend   *redisx.Backend
	store     *store.Store
	events    *events.Bus
	logs      *joblog.Manager
	jobs      *jobs.Controller
	runner    *runner.Runner
	plugins   *pluginhost.Host
	pool      *queue.Pool
	due       *due.Mover
	hooks     *hook.Deliverer
	reaper    *reaper.Reaper
	scheduler *periodic.Scheduler
	listener  *pubsub.Listener
	failover  *failover
	server    *http.Server
	addr      net.Addr
	errs      chan error

	stopOnce sync.Once
}

// New returns a Host; Start starts it.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	return &Host{opts: opts, cfg: opts.Config, log: opts.Logger, errs: make(chan error, 1)}
}

// Start builds the host and returns once it serves the API. On error,
// whatever was started is stopped again.
func (h *Host) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			if h.server != nil {
				_ = h.server.Close()
			}
			h.teardown()
		}
	}()
	cfg := h.cfg
	for _, w := range cfg.Warnings() {
		h.log.Warn(w)
	}
	// The API listens from the start: until the host is ready, every call
	// (GET /stats, a load balancer's probe, included) is a 503 that says
	// what the host waits for.
	h.front = &frontHandler{}
	h.front.wait("the host is starting")
	if err = h.serve(h.front); err != nil {
		return err
	}
	if h.backend, err = h.openRedis(ctx); err != nil {
		return err
	}
	h.store = store.New(h.backend.Pool(), store.Options{
		Namespace:     cfg.WorkerPool.RedisPool.Namespace,
		MaxExecutions: cfg.Periodic.MaxExecutions,
		TTL:           store.TTLs{Success: cfg.Stats.SuccessTTL.Std(), Stopped: cfg.Stats.StoppedTTL.Std(), Error: cfg.Stats.ErrorTTL.Std()},
		// A silent running job keeps its unique claim until the reaper
		// fails it (max_job_duration), never less than a day.
		UniqueTTL: max(store.DefaultUniqueTTL, cfg.Reaper.MaxJobDuration.Std()+cfg.Reaper.Interval.Std()),
		// A running job's lease: a host silent for dead_after has lost its
		// runs, as its worker pool is dead then.
		Lease:       cfg.Reaper.DeadAfter.Std(),
		ReplicaAcks: cfg.WorkerPool.RedisPool.ReplicaAcks,
		// Only a Sentinel primary moves to a node that may lack what the
		// old one took last.
		Journal: h.backend.Sentinel(),
	})
	if h.logs, err = jobLogs(cfg, h.store, h.opts.Stdout, h.log.Named("joblog")); err != nil {
		return err
	}
	props := map[string]string{}
	for k, v := range cfg.JobProperties {
		props[k] = v
	}
	if cfg.CoreURL != "" {
		props["core_url"] = cfg.CoreURL
	}
	h.events = events.New()
	h.runner = runner.New(runner.Options{JobTimeout: cfg.Plugins.JobTimeout.Std(), StopGrace: cfg.Plugins.StopGrace.Std(),
		Logger: h.log.Named("runner")})
	sections, err := cfg.PluginSections(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if h.plugins, err = pluginhost.Load(ctx, pluginhost.Options{
		Dir: cfg.PluginsDir, Callbacks: h.runner, Logger: h.log, Config: sections, Reattach: cfg.Reattach,
		StartTimeout: cfg.Plugins.StartTimeout.Std(), KillTimeout: cfg.Plugins.KillTimeout.Std(),
		RestartBackoffMax: cfg.Plugins.RestartBackoffMax.Std(), GOMAXPROCS: cfg.Plugins.GOMAXPROCS,
		Checksums: cfg.Plugins.SHA256, RequireChecksums: cfg.Plugins.RequireSHA256,
		ProbeEvery: cfg.Plugins.ProbeEvery.Std(), ProbeTimeout: cfg.Plugins.ProbeTimeout.Std(), ProbeFailures: cfg.Plugins.ProbeFailures,
	}); err != nil {
		return err
	}
	var types []queue.Type
	var names []string
	for _, t := range h.plugins.JobTypes() {
		types = append(types, queue.Type{Name: t.Name, MaxConcurrency: t.MaxConcurrency})
		names = append(names, t.Name)
	}
	shownURL := redisx.HarborURL(cfg.WorkerPool.RedisPool.RedisURL)
	if cfg.API.HideRedisPassword {
		shownURL = redisx.Redact(shownURL)
	}
	h.jobs = jobs.New(jobs.Options{
		Store: h.store, Events: h.events, Plugins: h.plugins, Runner: h.runner, Logs: h.logs, Properties: props,
		Retry:    backoff.Policy{Base: cfg.Retry.BackoffBase.Std(), Max: cfg.Retry.BackoffMax.Std(), Jitter: 0.25},
		LogLimit: int64(cfg.MaxRetrieveSizeMB) << 20,
		Config: job.PoolConfig{RedisPoolConfig: job.RedisPoolConfig{
			RedisURL: shownURL, Namespace: cfg.WorkerPool.RedisPool.Namespace,
			IdleTimeoutSecond: int64(cfg.WorkerPool.RedisPool.IdleTimeoutSecond),
		}},
		// h.pool is built below, before any job can start.
		Backlog: func(n int) { h.pool.Behind(n) },
		Logger:  h.log.Named("jobs"),
	})
	h.runner.Bind(h.plugins, h.jobs)
	var rewrites []hook.Rewrite
	for _, r := range cfg.Hooks.Rewrites {
		rewrites = append(rewrites, hook.Rewrite{From: r.From, To: r.To})
	}
	h.hooks = hook.New(hook.Options{
		Store: h.store, Workers: cfg.Hooks.Workers, Timeout: cfg.Hooks.Timeout.Std(),
		BackoffBase: cfg.Hooks.BackoffBase.Std(), BackoffMax: cfg.Hooks.BackoffMax.Std(),
		Rewrites: rewrites, Logger: h.log.Named("hook"),
	})
	h.events.Observe(h.hooks.Observe)
	h.reaper = reaper.New(reaper.Options{
		Store: h.store, Lifecycle: h.jobs, Interval: cfg.Reaper.Interval.Std(), MaxJobDuration: cfg.Reaper.MaxJobDuration.Std(),
		DeadAfter: cfg.Reaper.DeadAfter.Std(), Logger: h.log.Named("reaper"),
	})
	h.due = due.New(due.Options{Store: h.store, Names: names, Logger: h.log.Named("due")})
	h.scheduler = periodic.New(periodic.Options{Policies: h.store, Executions: h.jobs, Logger: h.log.Named("periodic")})
	h.jobs.SetScheduler(h.scheduler)

	h.pool = queue.New(queue.Options{
		Redis: h.backend.Pool(), Namespace: h.store.Keys().WorkNamespace(), Concurrency: uint(cfg.WorkerPool.Workers),
		Types: types, Handler: h.jobs.Handle, Backoff: h.jobs.EntryBackoff, Logger: h.log.Named("queue"),
	})
	h.listener = pubsub.New(pubsub.Options{
		Pool: h.backend.Pool(),
		Handlers: map[string]func(string){
			h.store.Keys().Signals():  h.runner.OnSignal,
			h.store.Keys().Doorbell(): func(string) { h.pool.Wake() },
			h.store.Keys().Timer():    h.due.OnTimer,
			h.store.Keys().Hooks():    h.hooks.OnEvent,
		},
		// Back on Redis: catch up on stop requests, and look for jobs a
		// fetch took whose answer was lost with the connection.
		OnConnect: func() {
			h.jobs.Resync()
			h.pool.Sweep()
		},
		Logger: h.log.Named("pubsub"),
	})
	if err = h.listener.Start(ctx); err != nil {
		return fmt.Errorf("daemon: subscribe to Redis pub/sub: %w", err)
	}
	h.failover = newFailover(h.store, h.jobs, h.listener, h.log.Named("redis"))
	h.backend.OnPrimaryChange(h.failover.changed)
	if err = h.logs.Start(context.Background()); err != nil {
		return err
	}
	if err = h.pool.Start(ctx); err != nil {
		return err
	}
	h.due.Start(ctx)
	h.hooks.Start(ctx)
	h.reaper.Start(ctx)
	h.scheduler.Start(ctx)
	streamsDone := make(chan struct{}) // closed as the API server shuts down: the event streams end
	h.front.ready(api.New(h.jobs, api.Options{Secret: cfg.Secret, Logger: h.log.Named("api"), MaxBodyBytes: int64(cfg.API.MaxBodyBytes),
		MaxParameterBytes: int64(cfg.API.MaxParameterBytes), MaxConcurrentListings: cfg.API.MaxConcurrentListings,
		Stream: api.StreamOptions{Bus: h.events, Done: streamsDone, Counts: func(ctx context.Context) (*api.Counts, error) {
			g, err := h.store.Gauges(ctx, names)
			if err != nil {
				return nil, err
			}
			return &api.Counts{Jobs: g.Jobs, Queued: g.Queued, Scheduled: g.Scheduled, Retrying: g.Retrying}, nil
		}},
		Dashboard: dashboard.New(),
		Plugins:   func() any { return h.plugins.Health() }}))
	h.server.RegisterOnShutdown(func() { close(streamsDone) })
	if cfg.Metric.Enabled {
		if err = h.serveMetrics(names); err != nil {
			return err
		}
	}
	h.log.Info("berth is ready", "addr", h.addr.String(), "protocol", cfg.Protocol, "redis", h.backend.Describe(),
		"jobs", strings.Join(names, ","), "workers", cfg.WorkerPool.Workers)
	return nil
}

func (h *Host) serve(handler http.Handler) error {
	l := h.opts.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", h.cfg.Addr()); err != nil {
			return fmt.Errorf("daemon: listen on %s: %w (is another service on that port? set port or JOB_SERVICE_PORT)", h.cfg.Addr(), err)
		}
	}
	h.addr = l.Addr()
	// No client may hold the host: connections beyond the cap make room
	// by closing the longest idle one (connLimit; applied last, to the
	// connections the server sees, TLS ones included).
	var limit *connLimit
	h.server = &http.Server{Handler: handler,
		ReadHeaderTimeout: min(10*time.Second, h.cfg.API.ReadTimeout.Std()),
		ReadTimeout:       h.cfg.API.ReadTimeout.Std(),
		WriteTimeout:      h.cfg.API.WriteTimeout.Std(),
		IdleTimeout:       h.cfg.API.IdleTimeout.Std(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          h.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		ConnState:         func(c net.Conn, s http.ConnState) { limit.state(c, s) },
	}
	if h.cfg.Protocol == "https" {
		cert, err := tls.LoadX509KeyPair(h.cfg.HTTPSConfig.Cert, h.cfg.HTTPSConfig.Key)
		if err != nil {
			l.Close()
			return fmt.Errorf("daemon: https_config: %w", err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if ca := h.cfg.HTTPSConfig.ClientCA; ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				l.Close()
				return fmt.Errorf("daemon: https_config.client_ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				l.Close()
				return fmt.Errorf("daemon: https_config.client_ca: %s holds no PEM certificate", ca)
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		l = tls.NewListener(l, tc)
	}
	limit = newConnLimit(l, h.cfg.API.MaxConnections)
	l = limit
	go func() {
		if err := h.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case h.errs <- fmt.Errorf("daemon: API server: %w", err):
			default:
			}
		}
	}()
	return nil
}

// openRedis connects to Redis, and keeps trying with backoff (1 s
// doubling to 30 s) while the server cannot be reached, until ctx ends: a
// host started before its Redis waits for it instead of exiting, and says
// so in its log and in its 503s. A Redis that answers but refuses (a
// wrong password) is an error at once.
func (h *Host) openRedis(ctx context.Context) (*redisx.Backend, error) {
	opts := redisx.Options{
		URL:         h.cfg.WorkerPool.RedisPool.RedisURL,
		IdleTimeout: idleTimeout(h.cfg.WorkerPool.RedisPool.IdleTimeoutSecond),
		Logger:      h.log.Named("redis"),
	}
	wait := time.Second
	for attempt := 1; ; attempt++ {
		b, err := redisx.Open(ctx, opts)
		if err == nil {
			return b, nil
		}
		if !redisx.Unreachable(err) || ctx.Err() != nil {
			return nil, err
		}
		h.front.wait("Redis cannot be reached yet: " + err.Error())
		h.log.Warn("Redis cannot be reached; the host waits for it and answers 503 meanwhile",
			"attempt", attempt, "next_in", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("daemon: gave up waiting for Redis: %w", err)
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// frontHandler is what the API listener serves: 503s while the host
// starts, then the API.
type frontHandler struct {
	api atomic.Pointer[http.Handler]
	why atomic.Pointer[string]
}

func (f *frontHandler) wait(why string) { f.why.Store(&why) }

func (f *frontHandler) ready(h http.Handler) { f.api.Store(&h) }

func (f *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := f.api.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	why := "the host is starting"
	if p := f.why.Load(); p != nil {
		why = *p
	}
	body, _ := json.Marshal(map[string]any{"code": 10004, "message": "check stats of server failed with error", "details": "not ready: " + why})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "2")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(body)
}

// serveMetrics starts the Prometheus endpoint (package metrics) on its
// own port.
func (h *Host) serveMetrics(names []string) error {
	node, _ := os.Hostname()
	h.metrics = metrics.New(metrics.Options{
		Namespace: h.cfg.Metric.Namespace, Subsystem: h.cfg.Metric.Subsystem,
		Node: node, PoolID: fmt.Sprintf("%s:%d", node, os.Getpid()), Workers: h.cfg.WorkerPool.Workers,
		Events: h.events, Gauges: h.store.Gauges, Names: names, Plugins: h.plugins.Health,
	})
	l := h.opts.MetricsListener
	if l == nil {
		addr := net.JoinHostPort(h.cfg.BindAddress, strconv.Itoa(h.cfg.Metric.Port))
		var err error
		if l, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("daemon: metrics: listen on %s: %w (set metric.port)", addr, err)
		}
	}
	h.metricsAddr = l.Addr()
	mux := http.NewServeMux()
	mux.Handle(h.cfg.Metric.Path, h.metrics.Handler())
	h.metricsServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: h.log.Named("metrics").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	go func() {
		if err := h.metricsServer.Serve(netutil.LimitListener(l, 64)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("the metrics endpoint failed", "error", err)
		}
	}()
	h.log.Info("serving metrics", "addr", l.Addr().String(), "path", h.cfg.Metric.Path)
	return nil
}

// MetricsAddr is the address the metrics endpoint listens on (nil when
// metric.enabled is false).
func (h *Host) MetricsAddr() net.Addr { return h.metricsAddr }

// Addr is the address the API listens on.
func (h *Host) Addr() net.Addr { return h.addr }

// Err delivers an error that ends the host (the API server failed).
func (h *Host) Err() <-chan error { return h.errs }

// PluginPIDs lists the process IDs of the host's plugins.
func (h *Host) PluginPIDs() []int { return h.plugins.PIDs() }

// Events is the host's events bus: every change this host makes to a job
// (tests subscribe to it instead of sleeping). It does not see the changes
// other hosts make.
func (h *Host) Events() *events.Bus { return h.jobs.Events() }

// RunPeriodicPass runs one pass of the host's periodic scheduler now and
// returns how many executions it created.
func (h *Host) RunPeriodicPass(ctx context.Context) int { return h.scheduler.Pass(ctx) }

// Stop shuts the host down gracefully: the API stops, the workers stop
// taking jobs, running jobs get the shutdown grace period to finish and
// are then ended and queued again, and the plugins are stopped. Safe twice.
func (h *Host) Stop() {
	h.stopOnce.Do(h.shutdown)
}

func (h *Host) shutdown() {
	h.log.Info("shutting down", "grace", h.cfg.ShutdownGrace.Std())
	if h.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.server.Shutdown(ctx)
		cancel()
	}
	if h.metricsServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = h.metricsServer.Shutdown(ctx)
		cancel()
		h.metrics.Close()
	}
	if h.pool != nil {
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			h.pool.Stop()
		}()
		select {
		case <-stopped:
		case <-time.After(h.cfg.ShutdownGrace.Std()):
			h.log.Warn("running jobs did not finish within the grace period; stopping them, they are queued again")
			h.jobs.Shutdown()
			<-stopped
		}
	}
	h.teardown()
	h.log.Info("berth stopped")
}

// teardown stops what is left, in dependency order.
func (h *Host) teardown() {
	if h.reaper != nil {
		h.reaper.Stop()
	}
	if h.scheduler != nil {
		h.scheduler.Stop()
	}
	if h.due != nil {
		h.due.Stop()
	}
	if h.jobs != nil {
		h.jobs.Shutdown()
	}
	if h.pool != nil {
		h.pool.Stop()
	}
	if h.failover != nil {
		h.failover.stop()
	}
	if h.listener != nil {
		h.listener.Stop()
	}
	if h.hooks != nil {
		h.hooks.Stop()
	}
	if h.plugins != nil {
		h.plugins.Close()
	}
	if h.logs != nil {
		h.logs.Stop()
	}
	if h.backend != nil {
		_ = h.backend.Close()
	}
}

// jobLogs builds the job log backends of the configuration. Logs are read
// from REDIS when it is configured (any host can serve any job's log),
// else from FILE.
func jobLogs(cfg *config.Config, st *store.Store, stdout io.Writer, log hclog.Logger) (*joblog.Manager, error) {
	var (
		backends []joblog.Backend
		getter   joblog.Getter
		sweepers []joblog.Sweeper
	)
	for _, l := range cfg.JobLoggers {
		level, err := joblog.ParseLevel(l.Level)
		if err != nil {
			return nil, fmt.Errorf("daemon: job_loggers %s: %w", l.Name, err)
		}
		switch l.Name {
		case config.LoggerStdOutput:
			backends = append(backends, joblog.NewStdOutput(stdout, level))
		case config.LoggerFile:
			f, err := joblog.NewFile(l.BaseDir(), level, time.Now)
			if err != nil {
				return nil, fmt.Errorf("daemon: job_loggers FILE: %w", err)
			}
			backends = append(backends, f)
			if _, isRedis := getter.(*joblog.Redis); !isRedis {
				getter = f
			}
			if l.Sweeper != nil {
				sweepers = append(sweepers, f.Sweeper(time.Duration(l.Sweeper.Duration)*24*time.Hour))
			}
		case config.LoggerRedis:
			r := joblog.NewRedis(joblog.RedisOptions{
				Pool: st.Pool(), Key: st.Keys().JobLog, Level: level, MaxBytes: l.MaxBytes(),
				// As long as the longest-kept stats.
				TTL: max(cfg.Stats.SuccessTTL.Std(), cfg.Stats.StoppedTTL.Std(), cfg.Stats.ErrorTTL.Std()),
			})
			backends = append(backends, r)
			getter = r
		default:
			return nil, fmt.Errorf("daemon: job_loggers: unknown backend %q; use FILE, STD_OUTPUT or REDIS", l.Name)
		}
	}
	m := joblog.NewManager(backends, getter, sweepers, time.Hour, log)
	m.ShareLosses(st)
	return m, nil
}

// idleTimeout is idle_timeout_second for redisx: 0 means never, as the
// configuration documents.
func idleTimeout(seconds int) time.Duration {
	if seconds == 0 {
		return redisx.NoIdleTimeout
	}
	return time.Duration(seconds) * time.Second
}
