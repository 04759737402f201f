package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/daemon"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
)

// secret is the API secret of the bench's hosts.
const secret = "bench-secret"

// berthHost is a Berth host running inside the bench process (as the
// daemon package assembles it, with its plugin as a real child process).
type berthHost struct {
	d    *daemon.Host
	url  string
	ns   string
	keys store.Keys
}

// startHost starts a host on namespace ns with the default configuration,
// but for Redis, workers, plugins, secret, log directory and a short
// shutdown grace. Its plugin serves only the named job types, so that the
// host's workers poll the same number of queues as the raw pool they are
// compared with.
func (b *bench) startHost(ctx context.Context, ns string, jobs ...string) (*berthHost, error) {
	cfg := config.Default()
	cfg.WorkerPool.RedisPool.RedisURL = "redis://" + b.addr
	cfg.WorkerPool.RedisPool.Namespace = ns
	cfg.WorkerPool.Workers = b.opts.workers
	cfg.PluginsDir = b.pluginsDir
	cfg.Secret = secret
	cfg.ShutdownGrace = config.Duration(2 * time.Second)
	for i := range cfg.JobLoggers {
		if cfg.JobLoggers[i].Name == config.LoggerFile {
			cfg.JobLoggers[i].Settings[config.SettingBaseDir] = filepath.Join(b.tmp, "job_logs", ns)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("host config: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	level := hclog.Warn
	if b.opts.verbose {
		level = hclog.Info
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "host " + ns, Level: level, Output: b.hostLog})
	d := daemon.New(daemon.Options{Config: cfg, Listener: l, Logger: log})
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The plugin inherits the environment when the host launches it.
	os.Setenv("BERTH_PLUGIN_BENCH_JOBS", strings.Join(jobs, ","))
	defer os.Unsetenv("BERTH_PLUGIN_BENCH_JOBS")
	if err := d.Start(sctx); err != nil {
		return nil, fmt.Errorf("start a Berth host: %w", err)
	}
	return &berthHost{d: d, url: "http://" + l.Addr().String(), ns: ns, keys: store.NewKeys(ns)}, nil
}

func (h *berthHost) stop() { h.d.Stop() }

// runs tells whether a plugin process of this host has pid.
func (h *berthHost) runs(pid int) bool { return slices.Contains(h.d.PluginPIDs(), pid) }

// hostLog is where the hosts log: stderr, at most maxShown lines a part,
// with counts of warnings and errors for the part's notes.
type hostLog struct {
	mu            sync.Mutex
	warns, errs   int
	shown, hidden int
	firstErr      string
	firstWarn     string
}

const maxShown = 8

func (l *hostLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := string(p)
	switch {
	case strings.Contains(line, "[ERROR]"):
		l.errs++
		if l.firstErr == "" {
			l.firstErr = strings.TrimSpace(line)
		}
	case strings.Contains(line, "[WARN]"):
		l.warns++
		if l.firstWarn == "" {
			l.firstWarn = strings.TrimSpace(line)
		}
	}
	if l.shown < maxShown {
		l.shown++
		return os.Stderr.Write(p)
	}
	l.hidden++
	return len(p), nil
}

// take returns and resets the counts; first is the first error, or else
// the first warning.
func (l *hostLog) take() (warns, errs, hidden int, first string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	warns, errs, hidden, first = l.warns, l.errs, l.hidden, l.firstErr
	if first == "" {
		first = l.firstWarn
	}
	l.warns, l.errs, l.shown, l.hidden, l.firstErr, l.firstWarn = 0, 0, 0, 0, "", ""
	return
}

// apiClient calls the REST API as Harbor's core would.
type apiClient struct{ c *http.Client }

func newAPIClient() *apiClient {
	return &apiClient{c: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute,
	}}}
}

// submitBody returns the JSON of a submission.
func submitBody(name string, params job.Parameters, delay uint64) []byte {
	md := &job.Metadata{Kind: job.Generic}
	if delay > 0 {
		md = &job.Metadata{Kind: job.KindScheduled, ScheduleDelay: delay}
	}
	b, _ := json.Marshal(job.Request{Job: &job.RequestJob{Name: name, Parameters: params, Metadata: md}})
	return b
}

func (a *apiClient) do(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Harbor-Secret "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// submit posts a job and returns its stats.
func (a *apiClient) submit(ctx context.Context, base string, body []byte) (*job.Stats, error) {
	code, out, err := a.do(ctx, http.MethodPost, base+"/api/v1/jobs", body)
	if err != nil {
		return nil, fmt.Errorf("POST /api/v1/jobs: %w", err)
	}
	if code != http.StatusAccepted {
		return nil, fmt.Errorf("POST /api/v1/jobs: %d %s", code, bytes.TrimSpace(out))
	}
	var env job.Envelope
	if err := json.Unmarshal(out, &env); err != nil || env.Job == nil {
		return nil, fmt.Errorf("POST /api/v1/jobs: bad answer %q", out)
	}
	return env.Job, nil
}

// action posts {"action": action} for a job.
func (a *apiClient) action(ctx context.Context, base, id, action string) error {
	code, out, err := a.do(ctx, http.MethodPost, base+"/api/v1/jobs/"+id, []byte(`{"action":"`+action+`"}`))
	if err != nil {
		return fmt.Errorf("POST %s %s: %w", action, id, err)
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("POST %s %s: %d %s", action, id, code, bytes.TrimSpace(out))
	}
	return nil
}

// get returns a job's stats.
func (a *apiClient) get(ctx context.Context, base, id string) (*job.Stats, error) {
	code, out, err := a.do(ctx, http.MethodGet, base+"/api/v1/jobs/"+id, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", id, code, bytes.TrimSpace(out))
	}
	var env job.Envelope
	if err := json.Unmarshal(out, &env); err != nil || env.Job == nil {
		return nil, fmt.Errorf("GET %s: bad answer %q", id, out)
	}
	return env.Job, nil
}

// stamp is a report of the bench plugin: when (its wall clock) a job's
// Run started ("run") or saw its context end ("done"), and in which
// plugin process.
type stamp struct {
	at  time.Time
	pid int
}

// stampBook receives the plugin's UDP reports.
type stampBook struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  map[string]stamp
	wait map[string]chan stamp
	bad  int
}

func newStampBook() (*stampBook, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(8 << 20)
	b := &stampBook{conn: conn, got: map[string]stamp{}, wait: map[string]chan stamp{}}
	go b.loop()
	return b, nil
}

func (b *stampBook) addr() string { return b.conn.LocalAddr().String() }

func (b *stampBook) close() { b.conn.Close() }

func (b *stampBook) loop() {
	buf := make([]byte, 512)
	for {
		n, _, err := b.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		f := strings.Fields(string(buf[:n]))
		if len(f) != 4 {
			b.mu.Lock()
			b.bad++
			b.mu.Unlock()
			continue
		}
		ns, err1 := strconv.ParseInt(f[2], 10, 64)
		pid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		key, s := f[0]+" "+f[1], stamp{at: time.Unix(0, ns), pid: pid}
		b.mu.Lock()
		if ch := b.wait[key]; ch != nil {
			delete(b.wait, key)
			ch <- s
		} else {
			b.got[key] = s
		}
		b.mu.Unlock()
	}
}

// expect returns a channel that delivers the report kind of job id, even
// one that arrived before the call.
func (b *stampBook) expect(kind, id string) <-chan stamp {
	ch := make(chan stamp, 1)
	key := kind + " " + id
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.got[key]; ok {
		delete(b.got, key)
		ch <- s
		return ch
	}
	b.wait[key] = ch
	return ch
}

// take removes and returns the report kind of job id, if it arrived.
func (b *stampBook) take(kind, id string) (stamp, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := kind + " " + id
	s, ok := b.got[key]
	delete(b.got, key)
	return s, ok
}

// reset forgets every report and waiter.
func (b *stampBook) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = map[string]stamp{}
	b.wait = map[string]chan stamp{}
}
