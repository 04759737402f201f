package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// persistence is how a redis-server keeps its data.
type persistence int

const (
	// noPersistence: no AOF, no RDB snapshots; a restart starts empty.
	noPersistence persistence = iota
	// aofAlways: appendonly yes, appendfsync always.
	aofAlways
)

func (p persistence) String() string {
	if p == aofAlways {
		return "AOF, appendfsync always"
	}
	return "no persistence"
}

// redisNode is a redis-server on a fixed loopback port and directory, so
// that it can be killed and started again on the same data.
type redisNode struct {
	procs    *procSet
	name     string
	dir      string
	port     int
	persist  persistence
	password string
	// replicaOf is the primary's address, for a replica.
	replicaOf string
	p         *proc
}

// newRedis prepares a node on a free port (started by run).
func newRedis(procs *procSet, dir, name string, persist persistence, password string) (*redisNode, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	return &redisNode{procs: procs, name: name, dir: d, port: port, persist: persist, password: password}, nil
}

func (r *redisNode) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// run starts the server and waits until it answers PING (its AOF loaded).
func (r *redisNode) run(ctx context.Context) error {
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--daemonize", "no", "--maxclients", "10000"}
	if r.persist == aofAlways {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if r.password != "" {
		args = append(args, "--requirepass", r.password, "--masterauth", r.password)
	}
	if r.replicaOf != "" {
		h, p, _ := strings.Cut(r.replicaOf, ":")
		args = append(args, "--replicaof", h, p)
	}
	p, err := r.procs.start(r.name, filepath.Join(r.dir, "..", r.name+".log"), nil, "redis-server", args...)
	if err != nil {
		return fmt.Errorf("%w (install Debian's redis-server: make deps)", err)
	}
	r.p = p
	return waitFor(ctx, 15*time.Second, 20*time.Millisecond, func() error {
		if !p.alive() {
			return fmt.Errorf("redis-server %s ended: %v; %s", r.name, p.exit, strings.Join(p.tail(3), " | "))
		}
		_, err := r.do(ctx, "PING")
		return err
	})
}

// do runs one command on a fresh connection, bounded to 2 s.
func (r *redisNode) do(ctx context.Context, cmd string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", r.addr(), redis.DialPassword(r.password),
		redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return redis.DoContext(c, ctx, cmd, args...)
}

// shutdown ends the server as a service manager does (SIGTERM: with AOF
// it syncs and exits; without persistence it keeps nothing) and waits.
func (r *redisNode) shutdown() error {
	if err := r.p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !r.p.waitEnd(10 * time.Second) {
		r.p.kill()
		return fmt.Errorf("redis-server %s did not end within 10s of SIGTERM: killed", r.name)
	}
	return nil
}

// kill9 kills the server with SIGKILL and waits.
func (r *redisNode) kill9() error {
	if err := r.p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	r.p.kill()
	return nil
}

// info returns one field of INFO section.
func (r *redisNode) info(ctx context.Context, section, field string) string {
	s, err := redis.String(r.do(ctx, "INFO", section))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// sentinel is a redis-sentinel watching one primary by name.
type sentinel struct {
	name string // the master name
	port int
	p    *proc
}

// sentinelBinary is Debian's redis-sentinel if installed, else
// redis-server in sentinel mode (the same program).
func sentinelBinary() (string, []string) {
	if p, err := exec.LookPath("redis-sentinel"); err == nil {
		return p, nil
	}
	return "redis-server", []string{"--sentinel"}
}

// startSentinel starts a sentinel with a quorum of 1 and a 1 s down-after;
// the data nodes' password is given as auth-pass, the sentinel itself has
// none. It returns once the sentinel knows the primary and a replica.
func startSentinel(ctx context.Context, procs *procSet, dir, name string, primary *redisNode) (*sentinel, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := []string{
		fmt.Sprintf("port %d", port),
		"bind 127.0.0.1",
		"daemonize no",
		"dir " + dir,
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1", name, primary.port),
		fmt.Sprintf("sentinel down-after-milliseconds %s 1000", name),
		fmt.Sprintf("sentinel failover-timeout %s 10000", name),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}
	if primary.password != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", name, primary.password))
	}
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	bin, pre := sentinelBinary()
	p, err := procs.start("redis-sentinel", filepath.Join(dir, "sentinel.log"), nil, bin, append([]string{path}, pre...)...)
	if err != nil {
		return nil, err
	}
	s := &sentinel{name: name, port: port, p: p}
	err = waitFor(ctx, 20*time.Second, 50*time.Millisecond, func() error {
		if !p.alive() {
			return fmt.Errorf("redis-sentinel ended: %v; %s", p.exit, strings.Join(p.tail(3), " | "))
		}
		if _, err := s.master(ctx); err != nil {
			return err
		}
		n, err := s.replicas(ctx)
		if err == nil && n == 0 {
			err = fmt.Errorf("the sentinel knows no replica of %s yet", name)
		}
		return err
	})
	return s, err
}

func (s *sentinel) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *sentinel) do(ctx context.Context, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", s.addr(), redis.DialConnectTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return redis.DoContext(c, ctx, "SENTINEL", args...)
}

// master returns the primary's address as the sentinel reports it.
func (s *sentinel) master(ctx context.Context) (string, error) {
	v, err := redis.Strings(s.do(ctx, "get-master-addr-by-name", s.name))
	if err != nil {
		return "", err
	}
	if len(v) != 2 {
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name: %q", v)
	}
	return net.JoinHostPort(v[0], v[1]), nil
}

// replicas counts the replicas the sentinel knows in a good state.
func (s *sentinel) replicas(ctx context.Context) (int, error) {
	v, err := redis.Values(s.do(ctx, "replicas", s.name))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range v {
		fields, _ := redis.Strings(r, nil)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "flags" && fields[i+1] == "slave" {
				n++
			}
		}
	}
	return n, nil
}

// failover asks for a failover and waits until the sentinel names to as
// the primary.
func (s *sentinel) failover(ctx context.Context, to *redisNode) error {
	requested := false
	return waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		if !requested {
			_, err := s.do(ctx, "FAILOVER", s.name)
			switch {
			case err == nil || strings.HasPrefix(err.Error(), "INPROG"):
				requested = true
			default:
				return fmt.Errorf("SENTINEL FAILOVER: %w", err) // NOGOODSLAVE: try again
			}
		}
		m, err := s.master(ctx)
		if err != nil {
			return err
		}
		if m != to.addr() {
			return fmt.Errorf("the primary is still %s", m)
		}
		return nil
	})
}
