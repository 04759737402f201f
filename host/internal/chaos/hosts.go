package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// secret is the API secret (CORE_SECRET) of the suite's hosts.
const secret = "chaos-secret"

// Timing of the hosts: the reaper takes a host as dead after deadAfter
// (the least Berth accepts: its pools beat every 5 s) and sweeps every
// second. max_job_duration stays at its default (24 h), so that a job
// left Running is not hidden by the reaper's last resort. hooks.timeout
// is 2s (the receiver answers at once): a host that dies while it
// delivers a job's hooks holds them for its lease, 3×timeout+5s, 11 s
// here (35 s with the default 10s).
const (
	deadAfter      = 6 * time.Second
	reaperInterval = time.Second
)

// hostOpts is what differs between the hosts of the faults.
type hostOpts struct {
	redisURL, namespace string
	// fileLogs: the FILE job logger in this directory (and no REDIS
	// logger); empty: the REDIS logger, so that every host serves every
	// job's log.
	fileLogs string
	// replicaAcks: worker_pool.redis_pool.replica_acks.
	replicaAcks int
}

// berthHost is a bin/berth process.
type berthHost struct {
	name    string
	port    int
	cfgPath string
	api     *client.Client
	p       *proc
}

// config returns the YAML of a host.
func hostConfig(port int, pluginsDir string, o hostOpts) string {
	loggers := `  - name: "REDIS"
    level: "INFO"`
	if o.fileLogs != "" {
		loggers = `  - name: "FILE"
    level: "INFO"
    settings:
      base_dir: ` + strconv.Quote(o.fileLogs)
	}
	return fmt.Sprintf(`# Written by the chaos suite (host/internal/chaos).
port: %d
bind_address: "127.0.0.1"
plugins_dir: %q
shutdown_grace: 2s
worker_pool:
  workers: 8
  redis_pool:
    redis_url: %q
    namespace: %q
    replica_acks: %d
job_loggers:
%s
loggers:
  - name: "STD_OUTPUT"
    level: "INFO"
retry:
  backoff_base: 1s
  backoff_max: 2s
hooks:
  workers: 8
  timeout: 2s
  backoff_base: 1s
  backoff_max: 3s
reaper:
  interval: %s
  dead_after: %s
`, port, pluginsDir, o.redisURL, o.namespace, o.replicaAcks, loggers, reaperInterval, deadAfter)
}

// startHost writes the config of a host and starts it; it does not wait
// for the host to serve (waitServing does).
func (sc *scene) startHost(name string, o hostOpts) (*berthHost, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(sc.dir, name+".yml")
	if err := os.WriteFile(cfg, []byte(hostConfig(port, sc.s.pluginsDir, o)), 0o600); err != nil {
		return nil, err
	}
	api, err := client.New("http://127.0.0.1:"+strconv.Itoa(port), secret,
		client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second, Transport: sc.s.transport}))
	if err != nil {
		return nil, err
	}
	h := &berthHost{name: name, port: port, cfgPath: cfg, api: api}
	if err := sc.runHost(h); err != nil {
		return nil, err
	}
	sc.hosts = append(sc.hosts, h)
	return h, nil
}

// runHost starts (or starts again) the process of a host.
func (sc *scene) runHost(h *berthHost) error {
	p, err := sc.s.procs.start(h.name, filepath.Join(sc.dir, h.name+".log"),
		[]string{"CORE_SECRET=" + secret}, sc.s.berthBin, "-c", h.cfgPath)
	if err != nil {
		return err
	}
	h.p = p
	return nil
}

// waitServing waits until the host answers GET /api/v1/stats with its
// pools, within d.
func (h *berthHost) waitServing(ctx context.Context, d time.Duration) error {
	return waitFor(ctx, d, 50*time.Millisecond, func() error {
		if !h.p.alive() {
			return fmt.Errorf("%s ended (%v): %s", h.name, h.p.exit, strings.Join(h.p.tail(3), " | "))
		}
		_, err := h.pools(ctx)
		return err
	})
}

// pools reads GET /api/v1/stats.
func (h *berthHost) pools(ctx context.Context) ([]*client.WorkerPool, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return h.api.WorkerPools(ctx)
}

// plugins returns the PIDs of the host's plugin processes.
func (h *berthHost) plugins() []int {
	if !h.p.alive() {
		return nil
	}
	return children(h.p.pid())
}

// logCount counts the lines of the host's output that hold every one of
// words (case-insensitive).
func (h *berthHost) logCount(words ...string) (int, string) {
	raw, err := os.ReadFile(h.p.log)
	if err != nil {
		return 0, ""
	}
	n, first := 0, ""
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.ToLower(line)
		ok := true
		for _, w := range words {
			if !strings.Contains(l, strings.ToLower(w)) {
				ok = false
				break
			}
		}
		if ok {
			n++
			if first == "" {
				first = strings.TrimSpace(line)
			}
		}
	}
	return n, first
}
