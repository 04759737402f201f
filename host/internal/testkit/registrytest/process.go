package registrytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/host/internal/spawn"
)

const (
	// readyTimeout bounds a start, all port attempts together.
	readyTimeout = 15 * time.Second
	// maxAttempts bounds the number of ports tried when a bind fails.
	maxAttempts = 10
	// probeTimeout bounds each readiness probe.
	probeTimeout = 500 * time.Millisecond
	// instanceHeader carries a token unique to one Registry in every
	// answer, so that a probe knows the registry on a port is ours.
	instanceHeader = "X-Registrytest-Instance"
)

// errAddrInUse reports that the registry could not bind its port.
var errAddrInUse = errors.New("address already in use")

// binary finds docker-registry on PATH.
func binary() (string, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", fmt.Errorf("docker-registry not found on PATH (%v): run `make deps` (make test does it), which installs Debian's docker-registry, or `apt-get install -y docker-registry`", err)
	}
	return bin, nil
}

// start launches the registry on a new free port and waits until it
// answers. The caller holds r.mu.
func (r *Registry) start() error {
	if r.proc != nil && !r.proc.Exited() {
		return nil
	}
	bin, err := binary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var lastErr error
	for range maxAttempts {
		port, err := freePort()
		if err != nil {
			return err
		}
		if err := r.writeConfig(port); err != nil {
			return err
		}
		logStart := len(r.log.String())
		cmd := exec.Command(bin, "serve", r.configPath)
		cmd.Dir = r.dir
		cmd.Stdout, cmd.Stderr = r.log, r.log
		p, err := spawn.Start(cmd) // dies with the test binary
		if err != nil {
			return fmt.Errorf("start %s: %w", bin, err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = r.waitReady(ctx, p, addr, logStart)
		if err == nil {
			r.proc, r.backend = p, addr
			return nil
		}
		p.Kill()
		lastErr = err
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("gave up after %d ports: %w", maxAttempts, lastErr)
}

// freePort asks the kernel for a free loopback port. Another process may take
// it before the registry binds it: start notices and tries another.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls GET /v2/ on addr until our process answers it (401 with
// auth, 200 without, and our instance token), the process exits, or ctx
// ends. logStart is where this attempt's output begins in the log.
func (r *Registry) waitReady(ctx context.Context, p *spawn.Process, addr string, logStart int) error {
	client := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	output := func() string { return r.log.String()[logStart:] }
	var probeErr error
	for {
		if p.Exited() {
			if out := output(); strings.Contains(out, "address already in use") {
				return fmt.Errorf("docker-registry on %s: %w", addr, errAddrInUse)
			}
			return fmt.Errorf("docker-registry on %s exited during startup; its output:\n%s", addr, output())
		}
		probeErr = r.probe(ctx, client, addr)
		if probeErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker-registry on %s did not answer within %s (last probe: %v); its output:\n%s",
				addr, readyTimeout, probeErr, output())
		case <-tick.C:
		case <-p.Done():
		}
	}
}

func (r *Registry) probe(ctx context.Context, client *http.Client, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if got := resp.Header.Get(instanceHeader); got != r.token {
		return fmt.Errorf("port answered by another server (%s %q)", instanceHeader, got)
	}
	want := http.StatusOK
	if r.cfg.auth {
		want = http.StatusUnauthorized
	}
	if resp.StatusCode != want {
		return fmt.Errorf("GET /v2/ answered %d, want %d", resp.StatusCode, want)
	}
	return nil
}

// registryConfig is the part of distribution's configuration file that
// registrytest writes.
type registryConfig struct {
	Version string `yaml:"version"`
	Log     struct {
		Level     string `yaml:"level"`
		Formatter string `yaml:"formatter"`
	} `yaml:"log"`
	Storage struct {
		Filesystem struct {
			RootDirectory string `yaml:"rootdirectory"`
		} `yaml:"filesystem"`
		Delete struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"delete"`
		Maintenance struct {
			UploadPurging struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"uploadpurging"`
			ReadOnly struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"readonly"`
		} `yaml:"maintenance"`
	} `yaml:"storage"`
	HTTP struct {
		Addr    string              `yaml:"addr"`
		Secret  string              `yaml:"secret"`
		Headers map[string][]string `yaml:"headers"`
	} `yaml:"http"`
	Auth map[string]map[string]string `yaml:"auth,omitempty"`
}

// writeConfig writes the configuration file for a start on port.
func (r *Registry) writeConfig(port int) error {
	var c registryConfig
	c.Version = "0.1"
	// Warnings and errors, plus the access log (one line a request, which
	// the level does not filter).
	c.Log.Level, c.Log.Formatter = "warn", "text"
	c.Storage.Filesystem.RootDirectory = r.storageRoot
	c.Storage.Delete.Enabled = true
	// No purge of old uploads behind the back of GC tests; no blob
	// descriptor cache either (none is configured), so that the registry
	// sees at once what a GC did to its storage.
	c.Storage.Maintenance.UploadPurging.Enabled = false
	c.Storage.Maintenance.ReadOnly.Enabled = r.cfg.readOnly
	c.HTTP.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c.HTTP.Secret = r.token // the same across restarts: upload sessions stay valid
	c.HTTP.Headers = map[string][]string{instanceHeader: {r.token}}
	if r.cfg.auth {
		c.Auth = map[string]map[string]string{"htpasswd": {"realm": "registrytest", "path": r.htpasswdPath}}
	}
	raw, err := yaml.Marshal(&c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.WriteFile(r.configPath, raw, 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
