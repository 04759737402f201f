package redisx

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(redistest.WithCleanup(m))
}

// testLogger logs through t.Log.
func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: testWriter{t}, Level: hclog.Debug})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// open opens a backend closed at cleanup.
func open(t *testing.T, opts Options) *Backend {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", opts.URL, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// do runs one command on a pooled connection.
func do(t *testing.T, b *Backend, cmd string, args ...any) any {
	t.Helper()
	c := b.Pool().Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return v
}

// serverPort returns the TCP port of the server a pooled connection reaches.
func serverPort(t *testing.T, b *Backend) string {
	t.Helper()
	info, err := redis.String(do(t, b, "INFO", "server"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "tcp_port:"); ok {
			return v
		}
	}
	t.Fatal("INFO server has no tcp_port")
	return ""
}

// selectedDB returns the database a pooled connection has selected.
func selectedDB(t *testing.T, b *Backend) int {
	t.Helper()
	info, err := redis.String(do(t, b, "CLIENT", "INFO"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for f := range strings.FieldsSeq(info) {
		if v, ok := strings.CutPrefix(f, "db="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("CLIENT INFO has no db: %q", info)
	return -1
}

func TestOpenURLForms(t *testing.T) {
	t.Parallel()
	shared := redistest.Shared(t)
	withPassword := redistest.Start(t, redistest.WithPassword("p@ss,w#rd"), redistest.WithUnixSocket())
	pw := url.QueryEscape(withPassword.Password())
	_, port, _ := net.SplitHostPort(withPassword.Addr())

	tests := []struct {
		name string
		url  string
		db   int
	}{
		{"Redis", shared.URL(), 0},
		{"RedisDB", shared.URL() + "/3", 3},
		{"Password", "redis://:" + pw + "@" + withPassword.Addr() + "/1", 1},
		{"UnescapedPassword", "redis://:p@ss,w#rd@" + withPassword.Addr() + "/2", 2},
		{"HarborAnonymous", "redis://anonymous:" + pw + "@" + withPassword.Addr(), 0},
		{"Unix", "unix://:" + pw + "@" + withPassword.Socket() + "?db=4", 4},
		{"Legacy", shared.Addr(), 0},
		{"LegacyPasswordDB", "127.0.0.1:" + port + ",100,p@ss,w#rd,5", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := open(t, Options{URL: tt.url})
			if b.Embedded() {
				t.Error("Embedded() = true")
			}
			if strings.Contains(b.Describe(), "p@ss") {
				t.Errorf("Describe() = %q leaks the password", b.Describe())
			}
			if got := selectedDB(t, b); got != tt.db {
				t.Errorf("selected db %d, want %d", got, tt.db)
			}
			key := "redisx-test:" + shared.Namespace(t)
			do(t, b, "SET", key, "v", "EX", 60)
			if v, _ := redis.String(do(t, b, "GET", key), nil); v != "v" {
				t.Errorf("GET = %q", v)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	withPassword := redistest.Start(t, redistest.WithPassword("right"))

	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()

	// A listener that never accepts: the kernel completes the handshake,
	// nobody answers PING.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })

	tests := []struct {
		name string
		url  string
		want []string
	}{
		{"BadURL", "redis://h:x", []string{`"redis://h:x"`, `port "x"`}},
		{"Refused", "redis://:secret@" + refusedAddr + "/0", []string{
			"redisx: open redis://:xxxxx@" + refusedAddr + "/0: dial " + refusedAddr, "connection refused", "check that Redis runs at " + refusedAddr}},
		{"Silent", "redis://" + silent.Addr().String(), []string{silent.Addr().String(), "check that Redis runs at"}},
		{"WrongPassword", "redis://:wrong@" + withPassword.Addr(), []string{withPassword.Addr(), "WRONGPASS", "check the user name and password"}},
		{"NoPassword", withPassword.URL()[:len("redis://")] + withPassword.Addr(), []string{"NOAUTH", "check the user name and password"}},
		{"DBOutOfRange", "redis://:right@" + withPassword.Addr() + "/999", []string{"DB index is out of range", "check the database number"}},
		{"NoSocket", "unix:///nonexistent/redis.sock", []string{"/nonexistent/redis.sock", "check that Redis listens on the socket"}},
		{"Legacy", refusedAddr + ",100,secret,0", []string{"redis://:xxxxx@" + refusedAddr + "/0", "connection refused"}},
	}
	const dialTimeout = 500 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			b, err := Open(context.Background(), Options{URL: tt.url, DialTimeout: dialTimeout})
			elapsed := time.Since(start)
			if err == nil {
				b.Close()
				t.Fatalf("Open(%q) succeeded", tt.url)
			}
			if elapsed > dialTimeout+time.Second {
				t.Errorf("Open took %s with DialTimeout %s", elapsed, dialTimeout)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "secret@") || strings.Contains(msg, "right@") || strings.Contains(msg, ",secret") {
				t.Errorf("error %q leaks the password", msg)
			}
		})
	}
}

func TestOpenHonoursContext(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Open(ctx, Options{URL: "redis://" + silent.Addr().String(), DialTimeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), silent.Addr().String()) {
		t.Fatalf("Open = %v, want an error naming %s", err, silent.Addr())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open ignored its context for %s", d)
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field string
		opts  Options
	}{
		{"IdleTimeout", Options{IdleTimeout: -time.Second}},
		{"MaxIdle", Options{MaxIdle: -1}},
		{"MaxActive", Options{MaxActive: -1}},
		{"DialTimeout", Options{DialTimeout: -time.Second}},
	}
	for _, tt := range tests {
		_, err := Open(context.Background(), tt.opts)
		if err == nil || !strings.Contains(err.Error(), "Options."+tt.field) {
			t.Errorf("Open(%+v) = %v, want an error naming %s", tt.opts, err, tt.field)
		}
	}
}

func TestPoolSettings(t *testing.T) {
	t.Parallel()
	s := redistest.Shared(t)
	b := open(t, Options{URL: s.URL()})
	p := b.Pool()
	if p.MaxIdle != DefaultMaxIdle || p.MaxActive != 0 || p.Wait || p.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("defaults: MaxIdle=%d MaxActive=%d Wait=%v IdleTimeout=%s", p.MaxIdle, p.MaxActive, p.Wait, p.IdleTimeout)
	}
	if never := open(t, Options{URL: s.URL(), IdleTimeout: NoIdleTimeout}).Pool(); never.IdleTimeout != 0 {
		t.Errorf("NoIdleTimeout: pool IdleTimeout=%s, want 0 (never)", never.IdleTimeout)
	}
	capped := open(t, Options{URL: s.URL(), MaxActive: 3, MaxIdle: 2, IdleTimeout: time.Minute})
	p = capped.Pool()
	if p.MaxIdle != 2 || p.MaxActive != 3 || !p.Wait || p.IdleTimeout != time.Minute {
		t.Errorf("capped: MaxIdle=%d MaxActive=%d Wait=%v IdleTimeout=%s", p.MaxIdle, p.MaxActive, p.Wait, p.IdleTimeout)
	}
	if got, want := b.Describe(), "redis://"+s.Addr()+"/0"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	// Harbor's installer writes ?idle_timeout_seconds=30 beside the pool
	// setting of its config file; the URL's wins, as in Harbor.
	harbor := open(t, Options{URL: s.URL() + "/0?idle_timeout_seconds=30", IdleTimeout: time.Hour})
	if p := harbor.Pool(); p.IdleTimeout != 30*time.Second {
		t.Errorf("with idle_timeout_seconds=30: IdleTimeout=%s, want 30s", p.IdleTimeout)
	}
	if got, want := harbor.Describe(), "redis://"+s.Addr()+"/0?idle_timeout_seconds=30"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	never := open(t, Options{URL: s.URL() + "/0?idle_timeout_seconds=0"})
	if p := never.Pool(); p.IdleTimeout != 0 {
		t.Errorf("with idle_timeout_seconds=0: IdleTimeout=%s, want 0 (never close)", p.IdleTimeout)
	}
}

func TestTestOnBorrow(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b := open(t, Options{URL: s.URL(), DialTimeout: time.Second})
	c, err := b.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := b.testOnBorrow(c, time.Now().Add(-2*time.Minute)); err != nil {
		t.Fatalf("healthy idle connection rejected: %v", err)
	}
	s.Kill()
	if err := b.testOnBorrow(c, time.Now()); err != nil {
		t.Fatalf("recently used connection was tested: %v", err)
	}
	if err := b.testOnBorrow(c, time.Now().Add(-2*time.Minute)); err == nil {
		t.Fatal("connection idle for 2 min to a dead server passed TestOnBorrow")
	}
}

func TestRedisRestart(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b := open(t, Options{URL: s.URL(), DialTimeout: time.Second})
	do(t, b, "SET", "k", "v")
	s.Restart(t)
	// The pooled connection is dead; redigo drops it when it fails.
	c := b.Pool().Get()
	_, _ = c.Do("PING")
	c.Close()
	do(t, b, "SET", "k", "v")
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", redistest.Shared(t).URL()} {
		b, err := Open(context.Background(), Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := b.Pool().Get().Do("PING"); err == nil {
			t.Error("pool usable after Close")
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t, redistest.WithTLS(), redistest.WithPassword("pw"))

	b := open(t, Options{URL: s.TLSURL() + "/1?skip_verify=true"})
	if got := selectedDB(t, b); got != 1 {
		t.Errorf("selected db %d, want 1", got)
	}
	// The self-signed certificate is not trusted without skip_verify.
	_, err := Open(context.Background(), Options{URL: s.TLSURL(), DialTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "check that the server speaks TLS") {
		t.Fatalf("Open without skip_verify = %v, want a certificate error", err)
	}
	// A TLS client on the plain port.
	_, err = Open(context.Background(), Options{URL: "rediss://:pw@" + s.Addr() + "?skip_verify=true", DialTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "check that the server speaks TLS") {
		t.Fatalf("TLS Open on the plain port = %v, want a TLS error", err)
	}
}
