package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(WithCleanup(m))
}

func ping(t *testing.T, p *redis.Pool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = redis.DoContext(c, ctx, "PING")
	return err
}

// pidGone reports whether pid no longer runs. A zombie counts as gone: in a
// container whose init does not reap, an orphan killed by its parent-death
// signal stays a zombie.
func pidGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return runtime.GOOS == "linux"
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

func TestStart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(s.URL(), s.Addr()) {
		t.Fatalf("URL() = %q, Addr() = %q", s.URL(), s.Addr())
	}
	p := s.Pool(t)
	if err := ping(t, p); err != nil {
		t.Fatalf("PING: %v", err)
	}
	c := p.Get()
	defer c.Close()
	// No persistence.
	for param, want := range map[string]string{"save": "", "appendonly": "no"} {
		v, err := redis.Strings(c.Do("CONFIG", "GET", param))
		if err != nil || len(v) != 2 || v[1] != want {
			t.Errorf("CONFIG GET %s = %q, %v; want %q", param, v, err, want)
		}
	}
}

func TestCleanupKillsProcess(t *testing.T) {
	t.Parallel()
	var pid int
	t.Run("Inner", func(t *testing.T) {
		s := Start(t)
		pid = s.pid()
		if pid == 0 || pidGone(pid) {
			t.Fatalf("server pid %d not running", pid)
		}
	})
	if pid == 0 {
		t.Fatal("no pid")
	}
	if !pidGone(pid) {
		t.Fatalf("redis-server pid %d still running after cleanup", pid)
	}
}

func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	addr, pid := s.Addr(), s.pid()
	p := s.Pool(t)

	s.Kill()
	if !pidGone(pid) {
		t.Fatalf("pid %d still running after Kill", pid)
	}
	if err := ping(t, p); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	s.Kill() // twice is fine

	s.Restart(t)
	if s.Addr() != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr())
	}
	if s.pid() == pid {
		t.Fatal("Restart kept the old process")
	}
	if err := ping(t, p); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestManyParallelServers(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"A", "B", "C", "D", "E", "F"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := Start(t)
			if err := ping(t, s.Pool(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	t.Run("Password", func(t *testing.T) {
		t.Parallel()
		s := Start(t, WithPassword("s3cr3t/#"))
		if err := ping(t, s.Pool(t)); err != nil {
			t.Fatalf("PING with password: %v", err)
		}
		c, err := redis.DialURL(s.URL())
		if err != nil {
			t.Fatalf("DialURL(%s): %v", s.URL(), err)
		}
		defer c.Close()
		if _, err := c.Do("PING"); err != nil {
			t.Fatal(err)
		}
		anon, err := redis.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer anon.Close()
		if _, err := anon.Do("PING"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("PING without password: %v, want NOAUTH", err)
		}
	})
	t.Run("UnixSocket", func(t *testing.T) {
		t.Parallel()
		s := Start(t, WithUnixSocket())
		c, err := redis.Dial("unix", s.Socket())
		if err != nil {
			t.Fatalf("dial %s: %v", s.Socket(), err)
		}
		defer c.Close()
		if _, err := c.Do("PING"); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.UnixURL(), "unix:///") {
			t.Fatalf("UnixURL() = %q", s.UnixURL())
		}
	})
	t.Run("NoUnixSocket", func(t *testing.T) {
		t.Parallel()
		if u := Start(t).UnixURL(); u != "" {
			t.Fatalf("UnixURL() = %q without WithUnixSocket", u)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		s := Start(t, WithTLS(), WithPassword("pw"))
		if !strings.HasPrefix(s.TLSURL(), "rediss://:pw@127.0.0.1:") {
			t.Fatalf("TLSURL() = %q", s.TLSURL())
		}
		pem, err := os.ReadFile(s.CertFile())
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			t.Fatal("bad certificate PEM")
		}
		for name, restart := range map[string]bool{"Start": false, "Restart": true} {
			if restart {
				s.Restart(t)
			}
			c, err := redis.DialURL(s.TLSURL(), redis.DialTLSConfig(&tls.Config{RootCAs: roots}))
			if err != nil {
				t.Fatalf("%s: dial %s: %v", name, s.TLSURL(), err)
			}
			if _, err := c.Do("PING"); err != nil {
				t.Fatalf("%s: PING over TLS: %v", name, err)
			}
			c.Close()
		}
		if Start(t).TLSURL() != "" {
			t.Error("TLSURL() set without WithTLS")
		}
	})
	t.Run("Replica", func(t *testing.T) {
		t.Parallel()
		primary := Start(t)
		replica := Start(t, WithReplicaOf(primary))
		c := replica.Pool(t).Get()
		defer c.Close()
		role, err := redis.Values(c.Do("ROLE"))
		if err != nil || len(role) == 0 {
			t.Fatalf("ROLE: %v %v", role, err)
		}
		if r, _ := redis.String(role[0], nil); r != "slave" {
			t.Fatalf("replica ROLE = %q", r)
		}
	})
	t.Run("Args", func(t *testing.T) {
		t.Parallel()
		s := Start(t, WithArgs("--maxmemory", "10mb"))
		c := s.Pool(t).Get()
		defer c.Close()
		v, err := redis.Strings(c.Do("CONFIG", "GET", "maxmemory"))
		if err != nil || len(v) != 2 || v[1] != "10485760" {
			t.Fatalf("CONFIG GET maxmemory = %q, %v", v, err)
		}
	})
}

func TestShared(t *testing.T) {
	t.Parallel()
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	defer func() {
		if recover() == nil {
			t.Error("Kill on the shared server did not panic")
		}
	}()
	a.Kill()
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	s := Shared(t)
	seen := map[string]bool{}
	for range 10 {
		ns := s.Namespace(t)
		if seen[ns] {
			t.Fatalf("namespace %q returned twice", ns)
		}
		seen[ns] = true
		if !strings.HasPrefix(ns, "t-TestNamespace-") {
			t.Fatalf("namespace %q does not name the test", ns)
		}
	}

	var ns string
	p := s.Pool(t)
	t.Run("With/odd name*?[x]", func(t *testing.T) {
		ns = s.Namespace(t)
		if strings.ContainsAny(ns, "/*?[] ") {
			t.Fatalf("namespace %q not sanitised", ns)
		}
		c := p.Get()
		defer c.Close()
		if _, err := c.Do("SET", "{"+ns+"}:k", "v"); err != nil {
			t.Fatal(err)
		}
	})
	c := p.Get()
	defer c.Close()
	n, err := redis.Int(c.Do("EXISTS", "{"+ns+"}:k"))
	if err != nil || n != 0 {
		t.Fatalf("key of finished test still there on the shared server: EXISTS = %d, %v", n, err)
	}
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	primary := Start(t)
	replica := Start(t, WithReplicaOf(primary))
	sen := StartSentinel(t, primary, "berth")
	if got := sen.MasterAddr(t); got != primary.Addr() {
		t.Fatalf("MasterAddr = %s, want %s", got, primary.Addr())
	}
	sen.Failover(t, replica)
	if got := sen.MasterAddr(t); got != replica.Addr() {
		t.Fatalf("after failover MasterAddr = %s, want %s", got, replica.Addr())
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"TestX", "TestX"},
		{"TestX/sub case#01", "TestX_sub_case_01"},
		{"a*b?c[d]e\\f", "a_b_c_d_e_f"},
		{strings.Repeat("x", 100), strings.Repeat("x", 48)},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestNoOrphanAfterExit runs this test binary as a child that starts the
// shared server and exits without Cleanup; the server must die with it.
func TestNoOrphanAfterExit(t *testing.T) {
	if os.Getenv("REDISTEST_ORPHAN_CHILD") == "1" {
		s := Shared(t)
		own := Start(t) // a per-test server too; its t.Cleanup never runs
		fmt.Printf("pid=%d\ndir=%s\ndir=%s\n", s.pid(), s.dir, own.dir)
		os.Exit(0)
	}
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux only")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoOrphanAfterExit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REDISTEST_ORPHAN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var pid int
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "pid="); ok {
			pid, _ = strconv.Atoi(v)
		}
		if dir, ok := strings.CutPrefix(line, "dir="); ok && strings.Contains(dir, "redistest-") {
			t.Cleanup(func() { os.RemoveAll(dir) })
		}
	}
	if pid == 0 {
		t.Fatalf("child printed no pid:\n%s", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !pidGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("redis-server pid %d outlived its test binary", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Not parallel: it changes PATH.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := newServer(config{}, false)
	if err == nil {
		t.Fatal("started without redis-server on PATH")
	}
	for _, w := range []string{"redis-server not found", "make test", "apt-get install -y redis-server"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}
