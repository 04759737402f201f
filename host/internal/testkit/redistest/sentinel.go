package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Sentinel is a running redis-sentinel monitoring one primary.
type Sentinel struct {
	node
	name    string
	primary *Server
}

// StartSentinel starts a sentinel (redis-server --sentinel) on a free
// loopback port that monitors master under name, with a quorum of 1 and short
// timeouts (down after 1 s). It is killed in t.Cleanup. It returns once the
// sentinel answers SENTINEL get-master-addr-by-name for name.
//
// Start replicas before the sentinel so that it finds them at once: a
// sentinel learns about replicas from the primary's INFO.
func StartSentinel(t testing.TB, master *Server, name string) *Sentinel {
	t.Helper()
	if _, err := binary(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	dir, err := os.MkdirTemp("", "redistest-sentinel-")
	if err != nil {
		t.Fatalf("redistest: create temp dir: %v", err)
	}
	s := &Sentinel{name: name, primary: master}
	s.node = node{role: "redis-sentinel", dir: dir, args: s.args, ready: s.knowsMaster}
	t.Cleanup(func() {
		s.kill()
		_ = os.RemoveAll(dir)
	})
	if err := s.start(false); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return s
}

// args writes a fresh config file (a sentinel needs a writable one) and
// returns the command line.
func (s *Sentinel) args(port int, _ bool) ([]string, error) {
	host, mport, _ := strings.Cut(s.primary.Addr(), ":")
	conf := []string{
		fmt.Sprintf("port %d", port),
		"bind 127.0.0.1",
		"daemonize no",
		"dir " + s.dir,
		"logfile " + s.logPath(),
		fmt.Sprintf("sentinel monitor %s %s %s 1", s.name, host, mport),
		fmt.Sprintf("sentinel down-after-milliseconds %s 1000", s.name),
		fmt.Sprintf("sentinel failover-timeout %s 10000", s.name),
		fmt.Sprintf("sentinel parallel-syncs %s 1", s.name),
	}
	if pw := s.primary.cfg.password; pw != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", s.name, pw))
	}
	path := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("redis-sentinel: write config: %w", err)
	}
	return []string{path, "--sentinel"}, nil
}

func (s *Sentinel) knowsMaster(ctx context.Context, addr string) error {
	c, err := redis.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = masterAddr(ctx, c, s.name)
	return err
}

func masterAddr(ctx context.Context, c redis.Conn, name string) (string, error) {
	v, err := redis.Strings(redis.DoContext(c, ctx, "SENTINEL", "get-master-addr-by-name", name))
	if err != nil {
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name %s: %w", name, err)
	}
	if len(v) != 2 {
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name %s: unexpected reply %q", name, v)
	}
	return net.JoinHostPort(v[0], v[1]), nil
}

// Addr returns 127.0.0.1:<port> of the sentinel.
func (s *Sentinel) Addr() string { return s.addr() }

// Name returns the monitored master name.
func (s *Sentinel) Name() string { return s.name }

// Kill stops the sentinel now.
func (s *Sentinel) Kill() { s.kill() }

// MasterAddr returns the primary's address as the sentinel reports it.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		t.Fatalf("redistest: dial sentinel %s: %v", s.Addr(), err)
	}
	defer c.Close()
	addr, err := masterAddr(ctx, c, s.name)
	if err != nil {
		t.Fatalf("redistest: sentinel %s: %v", s.Addr(), err)
	}
	return addr
}

// Failover forces a failover (SENTINEL FAILOVER) and waits, up to 30 s, until
// the sentinel reports to as the primary. to must be a replica of the current
// primary, started before the sentinel or at least 10 s before the call.
func (s *Sentinel) Failover(t testing.TB, to *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		t.Fatalf("redistest: dial sentinel %s: %v", s.Addr(), err)
	}
	defer c.Close()
	requested := false
	var last error
	for {
		if !requested {
			_, err := redis.DoContext(c, ctx, "SENTINEL", "FAILOVER", s.name)
			// NOGOODSLAVE: the sentinel has not yet seen the replica; INPROG:
			// a failover is already running.
			switch {
			case err == nil || strings.HasPrefix(err.Error(), "INPROG"):
				requested = true
			case strings.HasPrefix(err.Error(), "NOGOODSLAVE"):
				last = err
			default:
				t.Fatalf("redistest: SENTINEL FAILOVER %s: %v", s.name, err)
			}
		}
		if requested {
			addr, err := masterAddr(ctx, c, s.name)
			if err == nil && addr == to.Addr() {
				return
			}
			last = fmt.Errorf("primary is %s, want %s (%v)", addr, to.Addr(), err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redistest: failover of %s to %s did not finish: %v; sentinel output:\n%s", s.name, to.Addr(), last, s.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
