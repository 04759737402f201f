package redisx

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t, redistest.WithPassword("pw"))
	replica := redistest.Start(t, redistest.WithPassword("pw"), redistest.WithReplicaOf(primary))
	sen := redistest.StartSentinel(t, primary, "berth")

	t.Run("Basic", func(t *testing.T) {
		b := open(t, Options{URL: "redis+sentinel://:pw@" + sen.Addr() + "/berth/2"})
		if got, want := serverPort(t, b), portOf(t, primary.Addr()); got != want {
			t.Errorf("connected to port %s, want the primary's %s", got, want)
		}
		if got := selectedDB(t, b); got != 2 {
			t.Errorf("selected db %d, want 2", got)
		}
		if got, want := b.Describe(), "redis+sentinel://:xxxxx@"+sen.Addr()+"/berth/2"; got != want {
			t.Errorf("Describe() = %q, want %q", got, want)
		}
	})
	t.Run("FirstSentinelDown", func(t *testing.T) {
		b := open(t, Options{URL: "redis+sentinel://:pw@" + closedAddr(t) + "," + sen.Addr() + "/berth", DialTimeout: time.Second})
		if got, want := serverPort(t, b), portOf(t, primary.Addr()); got != want {
			t.Errorf("connected to port %s, want the primary's %s", got, want)
		}
	})
	t.Run("UnknownMaster", func(t *testing.T) {
		_, err := Open(context.Background(), Options{URL: "redis+sentinel://" + sen.Addr() + "/nosuch"})
		if err == nil {
			t.Fatal("Open succeeded")
		}
		for _, w := range []string{sen.Addr(), `does not monitor a master named "nosuch"`, "check the sentinel addresses"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		_, err := Open(context.Background(), Options{URL: "redis+sentinel://:nope@" + sen.Addr() + "/berth"})
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), primary.Addr()) {
			t.Fatalf("Open = %v, want WRONGPASS naming %s", err, primary.Addr())
		}
	})
	t.Run("StaleConnectionDropped", func(t *testing.T) {
		b := open(t, Options{URL: "redis+sentinel://:pw@" + sen.Addr() + "/berth"})
		c, err := b.dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := b.testOnBorrow(c, time.Now()); err != nil {
			t.Fatalf("connection to the primary rejected: %v", err)
		}
		b.sentinel.setCurrent(replica.Addr()) // as the monitor would after a switch
		err = b.testOnBorrow(c, time.Now())
		if err == nil || !strings.Contains(err.Error(), "no longer the primary") {
			t.Fatalf("testOnBorrow = %v, want a stale-primary error", err)
		}
	})
}

func TestSentinelNodeNotPrimary(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithReplicaOf(primary))
	// A sentinel told that the replica is the master gives its address.
	sen := redistest.StartSentinel(t, replica, "wrong")
	_, err := Open(context.Background(), Options{URL: "redis+sentinel://" + sen.Addr() + "/wrong"})
	if err == nil {
		t.Fatal("Open succeeded on a replica")
	}
	for _, w := range []string{replica.Addr(), `reports role "slave", not master`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithReplicaOf(primary))
	sen := redistest.StartSentinel(t, primary, "berth")
	var logs procs.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	b := open(t, Options{URL: "redis+sentinel://" + closedAddr(t) + "," + sen.Addr() + "/berth", DialTimeout: time.Second, Logger: logger})
	changes := make(chan [2]string, 4)
	b.OnPrimaryChange(func(from, to string) { changes <- [2]string{from, to} })

	// Leave idle connections to the old primary in the pool.
	conns := []redis.Conn{b.Pool().Get(), b.Pool().Get(), b.Pool().Get()}
	for _, c := range conns {
		if _, err := c.Do("SET", "before", "1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if n := b.Pool().IdleCount(); n != len(conns) {
		t.Fatalf("idle connections: %d, want %d", n, len(conns))
	}

	sen.Failover(t, replica)

	// The monitor learns of the switch within about monitorInterval.
	deadline := time.Now().Add(10 * time.Second)
	for b.sentinel.current() != replica.Addr() {
		if time.Now().After(deadline) {
			t.Fatalf("monitor still reports %s, want %s", b.sentinel.current(), replica.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every borrow now reaches the new primary at the first try: the old
	// connections are dropped, not handed out.
	for i := range 5 {
		c := b.Pool().Get()
		if _, err := c.Do("SET", "after", i); err != nil {
			t.Fatalf("SET after failover: %v", err)
		}
		c.Close()
	}
	if got, want := serverPort(t, b), portOf(t, replica.Addr()); got != want {
		t.Fatalf("connected to port %s after failover, want the new primary's %s", got, want)
	}
	if want := "Redis primary changed: master=berth from=" + primary.Addr() + " to=" + replica.Addr(); !strings.Contains(logs.String(), want) {
		t.Errorf("log does not contain %q:\n%s", want, logs.String())
	}
	// The host is told of the change, once.
	select {
	case c := <-changes:
		if c != [2]string{primary.Addr(), replica.Addr()} {
			t.Errorf("OnPrimaryChange(%q, %q), want (%q, %q)", c[0], c[1], primary.Addr(), replica.Addr())
		}
	default:
		t.Error("OnPrimaryChange was not called")
	}
	if len(changes) != 0 {
		t.Errorf("OnPrimaryChange called %d more times", len(changes))
	}
}
