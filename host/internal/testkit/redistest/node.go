package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/spawn"
)

const (
	// readyTimeout bounds how long a start (all port attempts together) may take.
	readyTimeout = 10 * time.Second
	// maxAttempts bounds the number of ports tried when a bind fails.
	maxAttempts = 20
	// probeTimeout bounds each readiness probe.
	probeTimeout = 500 * time.Millisecond
)

// errAddrInUse reports that redis-server could not bind its port.
var errAddrInUse = errors.New("address already in use")

// node runs one redis-server process (a server or a sentinel) on a fixed
// loopback port, restartable.
type node struct {
	role     string // "redis-server" or "redis-sentinel", for messages
	dir      string // private temp dir: logs, sockets, sentinel config
	password string // AUTH for readiness probes
	// args returns the command line for a start on port; fixed is set when
	// restarting on the same port(s).
	args func(port int, fixed bool) ([]string, error)
	// ready, if set, runs after the process answers, before start returns.
	ready func(ctx context.Context, addr string) error

	mu   sync.Mutex
	port int
	proc *spawn.Process
}

// binary finds redis-server on PATH.
func binary() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH (%v): run `make test`, which installs Debian's redis-server, or `apt-get install -y redis-server`", err)
	}
	return bin, nil
}

// start launches the process. With a fixed port (restart) it retries binding
// the same port for a while; otherwise it picks a new free port on each
// attempt.
func (n *node) start(fixedPort bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.Exited() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		port := n.port
		if !fixedPort {
			p, err := freePort()
			if err != nil {
				return err
			}
			port = p
		}
		p, err := n.spawn(port, fixedPort)
		if err != nil {
			return err
		}
		err = n.waitReady(ctx, p, port)
		if err == nil {
			n.port, n.proc = port, p
			return nil
		}
		p.Kill()
		lastErr = err
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			return err
		}
		if fixedPort {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("%s: gave up after %d attempts: %w", n.role, maxAttempts, lastErr)
}

// freePort asks the kernel for a free loopback port. Another process may take
// it before redis-server binds it: start notices and tries again.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (n *node) logPath() string { return filepath.Join(n.dir, "redis.log") }
func (n *node) outPath() string { return filepath.Join(n.dir, "redis.out") }

func (n *node) spawn(port int, fixed bool) (*spawn.Process, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	args, err := n.args(port, fixed)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(n.logPath())
	out, err := os.Create(n.outPath())
	if err != nil {
		return nil, fmt.Errorf("%s: create output file: %w", n.role, err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = n.dir
	// *os.File outputs: exec starts no copying goroutines.
	cmd.Stdout, cmd.Stderr = out, out
	// Killed with the test binary, even by SIGKILL.
	p, err := spawn.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", n.role, bin, err)
	}
	return p, nil
}

// waitReady polls until the server on port is the process p, p exits, or ctx
// ends.
func (n *node) waitReady(ctx context.Context, p *spawn.Process, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var probeErr error
	for {
		if p.Exited() {
			logs := n.logs()
			if strings.Contains(logs, "Address already in use") {
				return fmt.Errorf("%s on %s: %w", n.role, addr, errAddrInUse)
			}
			return fmt.Errorf("%s on %s exited during startup; its output:\n%s", n.role, addr, logs)
		}
		pid, err := probePid(ctx, addr, n.password)
		switch {
		case err == nil && pid == p.Pid():
			if n.ready == nil {
				return nil
			}
			if err := n.ready(ctx, addr); err != nil {
				return fmt.Errorf("%s on %s: %w; its output:\n%s", n.role, addr, err, n.logs())
			}
			return nil
		case err == nil:
			probeErr = fmt.Errorf("port answered by another process (pid %d, ours is %d)", pid, p.Pid())
		default:
			probeErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s on %s did not answer within %s (last probe: %v); its output:\n%s",
				n.role, addr, readyTimeout, probeErr, n.logs())
		case <-tick.C:
		case <-p.Done():
		}
	}
}

// probePid connects to addr and returns the pid the server reports.
func probePid(ctx context.Context, addr, password string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", addr, redis.DialPassword(password))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	info, err := redis.String(redis.DoContext(c, ctx, "INFO", "server"))
	if err != nil {
		return 0, err
	}
	v, ok := infoField(info, "process_id")
	if !ok {
		return 0, errors.New("INFO server has no process_id")
	}
	return strconv.Atoi(v)
}

// infoField returns one "key:value" field of an INFO reply.
func infoField(info, key string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+":"); ok {
			return v, true
		}
	}
	return "", false
}

// logs returns the tail of the process's log file and standard output.
func (n *node) logs() string {
	var b strings.Builder
	for _, path := range []string{n.outPath(), n.logPath()} {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		const max = 4 << 10
		if len(data) > max {
			data = data[len(data)-max:]
		}
		b.Write(data)
	}
	if b.Len() == 0 {
		return "(no output)"
	}
	return b.String()
}

// kill stops the process now and waits until it is gone. Safe to repeat.
func (n *node) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		n.proc.Kill()
		n.proc = nil
	}
}

func (n *node) addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
}

// pid returns the running process's pid, or 0.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.Exited() {
		return 0
	}
	return n.proc.Pid()
}

// dial opens a short-lived connection to the node for helpers.
func (n *node) dial(ctx context.Context) (redis.Conn, error) {
	return redis.DialContext(ctx, "tcp", n.addr(),
		redis.DialPassword(n.password),
		redis.DialConnectTimeout(probeTimeout),
		redis.DialReadTimeout(5*time.Second),
		redis.DialWriteTimeout(5*time.Second))
}
