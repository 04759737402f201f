package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Server is a running redis-server on 127.0.0.1.
type Server struct {
	node
	cfg     config
	shared  bool
	tlsPort int // guarded by node.mu
}

type config struct {
	tls        bool
	unixSocket bool
	password   string
	replicaOf  *Server
	args       []string
}

// Option configures a server started by Start.
type Option func(*config)

// WithUnixSocket makes the server also listen on a unix socket in its temp
// dir (see Socket and UnixURL).
func WithUnixSocket() Option { return func(c *config) { c.unixSocket = true } }

// WithTLS makes the server also accept TLS connections on a second port,
// with a self-signed certificate for 127.0.0.1 (see TLSURL and CertFile).
// Clients need not present certificates.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithPassword sets requirepass; URL and Pool include the password.
func WithPassword(password string) Option { return func(c *config) { c.password = password } }

// WithReplicaOf starts the server as a replica of primary. Start returns once
// the replication link is up.
func WithReplicaOf(primary *Server) Option { return func(c *config) { c.replicaOf = primary } }

// WithArgs appends raw redis-server arguments, such as "--maxmemory", "10mb".
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Start starts a fresh redis-server for this test and kills it (and removes
// its directory) in t.Cleanup. It fails the test if the server does not answer
// within 10 seconds.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	s, err := newServer(cfg, false)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

func newServer(cfg config, shared bool) (*Server, error) {
	if _, err := binary(); err != nil {
		return nil, err
	}
	// os.MkdirTemp rather than t.TempDir: a unix socket path must stay under
	// about 100 bytes, and t.TempDir embeds the test name.
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	s := &Server{cfg: cfg, shared: shared}
	s.node = node{role: "redis-server", dir: dir, password: cfg.password, args: s.args}
	if cfg.replicaOf != nil {
		s.node.ready = func(ctx context.Context, addr string) error {
			return waitReplicaLink(ctx, addr, cfg.password)
		}
	}
	if err := s.start(false); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) args(port int, fixed bool) ([]string, error) {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", s.logPath(),
		// Replicas sync at once instead of after the default 5 s wait.
		"--repl-diskless-sync-delay", "0",
	}
	if s.cfg.unixSocket {
		args = append(args, "--unixsocket", s.Socket(), "--unixsocketperm", "700")
	}
	if s.cfg.tls {
		if !fixed || s.tlsPort == 0 {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			s.tlsPort = p
		}
		if err := writeCert(s.CertFile(), s.keyFile()); err != nil {
			return nil, err
		}
		args = append(args,
			"--tls-port", strconv.Itoa(s.tlsPort),
			"--tls-cert-file", s.CertFile(),
			"--tls-key-file", s.keyFile(),
			"--tls-ca-cert-file", s.CertFile(),
			"--tls-auth-clients", "no")
	}
	if s.cfg.password != "" {
		args = append(args, "--requirepass", s.cfg.password)
	}
	if p := s.cfg.replicaOf; p != nil {
		host, port, _ := strings.Cut(p.Addr(), ":")
		args = append(args, "--replicaof", host, port)
		if p.cfg.password != "" {
			args = append(args, "--masterauth", p.cfg.password)
		}
	}
	return append(args, s.cfg.args...), nil
}

// waitReplicaLink waits until the replica at addr reports its link to the
// primary up.
func waitReplicaLink(ctx context.Context, addr, password string) error {
	var last error
	for {
		c, err := redis.DialContext(ctx, "tcp", addr, redis.DialPassword(password))
		if err == nil {
			var info string
			info, err = redis.String(redis.DoContext(c, ctx, "INFO", "replication"))
			c.Close()
			if v, _ := infoField(info, "master_link_status"); err == nil && v == "up" {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication link not up: %v (last probe error: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL returns redis://127.0.0.1:<port>, with the password if one is set.
func (s *Server) URL() string {
	if s.cfg.password != "" {
		return "redis://" + url.UserPassword("", s.cfg.password).String() + "@" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// Addr returns 127.0.0.1:<port>.
func (s *Server) Addr() string { return s.addr() }

// TLSURL returns rediss://127.0.0.1:<tls port>, with the password if one is
// set, or "" if the server was not started WithTLS.
func (s *Server) TLSURL() string {
	if !s.cfg.tls {
		return ""
	}
	s.mu.Lock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort))
	s.mu.Unlock()
	if s.cfg.password != "" {
		return "rediss://" + url.UserPassword("", s.cfg.password).String() + "@" + addr
	}
	return "rediss://" + addr
}

// CertFile returns the PEM file of the self-signed certificate (WithTLS).
func (s *Server) CertFile() string { return filepath.Join(s.dir, "tls.crt") }

func (s *Server) keyFile() string { return filepath.Join(s.dir, "tls.key") }

// Password returns the requirepass set with WithPassword, or "".
func (s *Server) Password() string { return s.cfg.password }

// Socket returns the unix socket path; the server listens on it only if
// started WithUnixSocket.
func (s *Server) Socket() string { return filepath.Join(s.dir, "redis.sock") }

// UnixURL returns unix://<socket>, with the password if one is set, or "" if
// the server was not started WithUnixSocket.
func (s *Server) UnixURL() string {
	if !s.cfg.unixSocket {
		return ""
	}
	if s.cfg.password != "" {
		return "unix://" + url.UserPassword("", s.cfg.password).String() + "@" + s.Socket()
	}
	return "unix://" + s.Socket()
}

// Namespace returns a namespace unique to this call, "t-<test name>-<random>",
// for per-test isolation on a shared server. On the shared server, keys
// containing it are deleted when the test ends.
func (s *Server) Namespace(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("redistest: random namespace: %v", err)
	}
	ns := "t-" + sanitize(t.Name()) + "-" + hex.EncodeToString(b[:])
	if s.shared {
		t.Cleanup(func() { s.deleteKeys(ns) })
	}
	return ns
}

// sanitize keeps letters, digits, '-' and '_' (so the name is also a safe
// glob), and bounds the length.
func sanitize(name string) string {
	const max = 48
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

// deleteKeys removes every key containing ns; best effort.
func (s *Server) deleteKeys(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	cursor := "0"
	for {
		v, err := redis.Values(redis.DoContext(c, ctx, "SCAN", cursor, "MATCH", "*"+ns+"*", "COUNT", 1000))
		if err != nil || len(v) != 2 {
			return
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Values(v[1], nil)
		if len(keys) > 0 {
			if _, err := redis.DoContext(c, ctx, "UNLINK", keys...); err != nil {
				return
			}
		}
		if cursor == "0" {
			return
		}
	}
}

// Pool returns a redigo pool to the server, closed in t.Cleanup.
func (s *Server) Pool(t testing.TB) *redis.Pool {
	t.Helper()
	p := &redis.Pool{
		MaxIdle:     8,
		IdleTimeout: time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", s.Addr(),
				redis.DialPassword(s.cfg.password),
				redis.DialConnectTimeout(5*time.Second))
		},
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Restart stops the server and starts it again on the same port. Data is
// lost. It fails the test on the shared server.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.shared {
		t.Fatal("redistest: Restart on the shared server; use Start for a server of your own")
	}
	s.kill()
	if err := s.start(true); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// Kill stops the server now, for tests of Redis outages. Restart brings it
// back. It panics on the shared server, which other tests are using.
func (s *Server) Kill() {
	if s.shared {
		panic("redistest: Kill on the shared server; use Start for a server of your own")
	}
	s.kill()
}

func (s *Server) close() {
	s.kill()
	_ = os.RemoveAll(s.dir)
}

var shared struct {
	mu  sync.Mutex
	srv *Server
}

// Shared returns the test binary's shared server, starting it on first use
// (or again if it died). It stays up until Cleanup or until the test binary
// exits, however it exits: on Linux the kernel kills it then (parent-death
// signal). Isolate tests on it with Namespace, and do not Kill or Restart it.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil && shared.srv.pid() != 0 {
		return shared.srv
	}
	if shared.srv != nil {
		shared.srv.close()
		shared.srv = nil
	}
	s, err := newServer(config{}, true)
	if err != nil {
		t.Fatalf("redistest: shared server: %v", err)
	}
	shared.srv = s
	return s
}

// Cleanup kills the shared server. Call it from TestMain after m.Run (or use
// WithCleanup); calling it while tests still run kills the server they
// share. Safe to call more than once.
func Cleanup() {
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.close()
		shared.srv = nil
	}
	shared.mu.Unlock()
}

// TestingM is the part of *testing.M that WithCleanup needs; it matches
// goleak.TestingM.
type TestingM interface {
	Run() int
}

// WithCleanup wraps m so that Cleanup runs right after the tests, before
// goleak.VerifyTestMain(redistest.WithCleanup(m)) checks for leaks.
func WithCleanup(m TestingM) TestingM { return cleanupM{m} }

type cleanupM struct{ m TestingM }

func (c cleanupM) Run() int {
	code := c.m.Run()
	Cleanup()
	return code
}
