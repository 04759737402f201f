package hosttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/daemon"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// Secret is the CORE_SECRET of test hosts.
const Secret = "test-secret"

// Cluster is one Redis namespace that test hosts share.
type Cluster struct {
	Redis     *redistest.Server
	Namespace string
	Plugins   string // plugins directory
}

// NewCluster returns a namespace on the shared test Redis and a plugins
// directory holding the named plugins (default: demo and fixture).
func NewCluster(t testing.TB, plugins ...string) *Cluster {
	t.Helper()
	if len(plugins) == 0 {
		plugins = []string{"demo", "fixture"}
	}
	srv := redistest.Shared(t)
	return &Cluster{Redis: srv, Namespace: srv.Namespace(t), Plugins: plugintest.Dir(t, plugins...)}
}

// Host is a running test host.
type Host struct {
	*daemon.Host
	URL    string
	Config *config.Config
	Log    *procs.Buffer
	client *http.Client
}

// Config returns the configuration of a test host of the cluster: short
// backoffs, a short shutdown grace, job logs in a temp dir.
func (c *Cluster) Config(t testing.TB) *config.Config {
	cfg := config.Default()
	cfg.WorkerPool.RedisPool.RedisURL = c.Redis.URL()
	cfg.WorkerPool.RedisPool.Namespace = c.Namespace
	cfg.WorkerPool.Workers = 4
	cfg.PluginsDir = c.Plugins
	cfg.Secret = Secret
	cfg.JobLoggers = []config.Logger{{Name: config.LoggerFile, Level: "DEBUG", Settings: map[string]any{config.SettingBaseDir: t.TempDir()}}}
	cfg.Retry.BackoffBase = config.Duration(time.Second)
	cfg.Retry.BackoffMax = config.Duration(2 * time.Second)
	cfg.ShutdownGrace = config.Duration(2 * time.Second)
	return cfg
}

// Start starts a host of the cluster, changed by mutate, and stops it at
// the end of the test.
func (c *Cluster) Start(t testing.TB, mutate func(*config.Config)) *Host {
	t.Helper()
	cfg := c.Config(t)
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("hosttest: config: %v", err)
	}
	return StartWith(t, cfg)
}

// StartWith starts a host with cfg.
func StartWith(t testing.TB, cfg *config.Config) *Host {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &procs.Buffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "berth", Output: logs, Level: hclog.Debug})
	opts := daemon.Options{Config: cfg, Logger: log, Listener: l}
	if cfg.Metric.Enabled {
		if opts.MetricsListener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	d := daemon.New(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("hosttest: start host: %v\n%s", err, logs.String())
	}
	h := &Host{Host: d, URL: "http://" + l.Addr().String(), Config: cfg, Log: logs,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(func() {
		d.Stop()
		h.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("host %s log:\n%s", h.URL, logs.String())
		}
	})
	return h
}

// Response is an API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("hosttest: answer %d is not JSON: %v\n%s", r.Status, err, r.Body)
	}
}

// Stats decodes a {"job":{...}} answer.
func (r *Response) Stats(t testing.TB) *job.Stats {
	t.Helper()
	var env job.Envelope
	r.JSON(t, &env)
	if env.Job == nil {
		t.Fatalf("hosttest: answer has no job: %s", r.Body)
	}
	return env.Job
}

// Do calls the API with the test secret (auth "" means none).
func (h *Host) Do(t testing.TB, method, path, auth string, body any) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("hosttest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Auth is the Authorization header of test hosts.
const Auth = "Harbor-Secret " + Secret

// Submit submits a job and expects 202.
func (h *Host) Submit(t testing.TB, name string, params map[string]any, meta map[string]any) *job.Stats {
	t.Helper()
	r := h.Do(t, http.MethodPost, "/api/v1/jobs", Auth, Request(name, params, meta))
	if r.Status != http.StatusAccepted {
		t.Fatalf("hosttest: submit %s: %d %s", name, r.Status, r.Body)
	}
	return r.Stats(t)
}

// Request builds a submission body; meta defaults to a Generic job.
func Request(name string, params map[string]any, meta map[string]any) map[string]any {
	if meta == nil {
		meta = map[string]any{"kind": "Generic"}
	}
	if _, ok := meta["kind"]; !ok {
		meta["kind"] = "Generic"
	}
	return map[string]any{"job": map[string]any{"name": name, "parameters": params, "metadata": meta}}
}

// Get reads a job's stats and expects 200.
func (h *Host) Get(t testing.TB, id string) *job.Stats {
	t.Helper()
	r := h.Do(t, http.MethodGet, "/api/v1/jobs/"+id, Auth, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("hosttest: get %s: %d %s", id, r.Status, r.Body)
	}
	return r.Stats(t)
}

// Action posts an action and returns the answer.
func (h *Host) Action(t testing.TB, id, action string) *Response {
	t.Helper()
	return h.Do(t, http.MethodPost, "/api/v1/jobs/"+id, Auth, map[string]string{"action": action})
}

// LogText reads a job's log and expects 200.
func (h *Host) LogText(t testing.TB, id string) string {
	t.Helper()
	r := h.Do(t, http.MethodGet, "/api/v1/jobs/"+id+"/log", Auth, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("hosttest: log of %s: %d %s", id, r.Status, r.Body)
	}
	return string(r.Body)
}

// Wait polls a job's stats until cond holds or the timeout passes, and
// returns the last stats.
func (h *Host) Wait(t testing.TB, id string, timeout time.Duration, what string, cond func(*job.Stats) bool) *job.Stats {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := h.Get(t, id)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("hosttest: job %s: no %s within %s; last stats: %+v", id, what, timeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitStatus waits until the job has status want.
func (h *Host) WaitStatus(t testing.TB, id string, want job.Status, timeout time.Duration) *job.Stats {
	t.Helper()
	return h.Wait(t, id, timeout, "status "+string(want), func(s *job.Stats) bool { return s.Status == want })
}

// WaitCheckin waits until the job's check_in is msg.
func (h *Host) WaitCheckin(t testing.TB, id, msg string, timeout time.Duration) *job.Stats {
	t.Helper()
	return h.Wait(t, id, timeout, fmt.Sprintf("check-in %q", msg), func(s *job.Stats) bool { return s.CheckIn == msg })
}

// eventBuffer is the buffer of a test subscription: more than a test's
// jobs make, so that none is dropped.
const eventBuffer = 1 << 14

// Subscribe subscribes to the events of this host (the changes it makes,
// not those of other hosts of the cluster); the subscription is closed at
// the end of the test.
func (h *Host) Subscribe(t testing.TB) *events.Subscription {
	t.Helper()
	sub := h.Events().Subscribe(eventBuffer)
	t.Cleanup(sub.Close)
	return sub
}

// WaitEvent reads sub until an event matches and returns it; the events
// read before it are gone. It fails the test when none matches within
// the timeout, saying whether the subscription dropped any.
func WaitEvent(t testing.TB, sub *events.Subscription, timeout time.Duration, what string, match func(job.Event) bool) job.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-sub.C():
			if !open {
				t.Fatalf("hosttest: the subscription closed before %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("hosttest: no event of %s within %s (the subscription dropped %d events)", what, timeout, sub.Dropped())
		}
	}
}
