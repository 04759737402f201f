package redisx

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestEmbedded(t *testing.T) {
	t.Parallel()
	var logs procs.Buffer
	b := open(t, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
	if !strings.Contains(logs.String(), "[WARN]  using the EMBEDDED in-memory Redis") {
		t.Errorf("no warning about the embedded backend in the log:\n%s", logs.String())
	}
	if !b.Embedded() {
		t.Error("Embedded() = false")
	}
	if got, want := b.Describe(), "embedded (in-memory, jobs do not survive a restart)"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	// Served over loopback TCP.
	host, _, err := net.SplitHostPort(b.target.Addrs[0])
	if err != nil || host != "127.0.0.1" {
		t.Errorf("embedded address %q, want 127.0.0.1:port", b.target.Addrs[0])
	}
	if v, _ := redis.String(do(t, b, "PING"), nil); v != "PONG" {
		t.Errorf("PING = %q", v)
	}
}

func TestEmbeddedTTLsRun(t *testing.T) {
	t.Parallel()
	b := open(t, Options{})
	do(t, b, "SET", "short", "v", "PX", 1200)
	do(t, b, "SET", "long", "v", "EX", 3600)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := redis.Int(do(t, b, "EXISTS", "short"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 1.2 s TTL still there after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, _ := redis.Int(do(t, b, "EXISTS", "long"), nil); n != 1 {
		t.Error("key with a 1 h TTL expired")
	}
}

// backends runs f on the embedded backend and on a real redis-server, so that
// the embedded one is held to what the real one does.
func backends(t *testing.T, f func(t *testing.T, b *Backend, ns string)) {
	t.Helper()
	real := redistest.Shared(t)
	for _, tt := range []struct{ name, url string }{{"Embedded", ""}, {"RedisServer", real.URL()}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f(t, open(t, Options{URL: tt.url}), "{"+real.Namespace(t)+"}")
		})
	}
}

func TestGocraftWork(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *Backend, ns string) {
		type jobContext struct{}
		ran := make(chan string, 4)
		wp := work.NewWorkerPool(jobContext{}, 2, ns, b.Pool())
		wp.JobWithOptions("greet", work.JobOptions{MaxFails: 1}, func(j *work.Job) error {
			ran <- j.ArgString("who")
			return j.ArgError()
		})
		wp.Start()
		defer wp.Stop()

		enq := work.NewEnqueuer(ns, b.Pool())
		if _, err := enq.Enqueue("greet", work.Q{"who": "now"}); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if _, err := enq.EnqueueIn("greet", 1, work.Q{"who": "later"}); err != nil {
			t.Fatalf("EnqueueIn: %v", err)
		}
		for _, want := range []string{"now", "later"} {
			select {
			case got := <-ran:
				if got != want {
					t.Fatalf("job ran with %q, want %q", got, want)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("job %q did not run", want)
			}
		}
	})
}

func TestPubSub(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *Backend, ns string) {
		channel := ns + ":events"
		psc := redis.PubSubConn{Conn: b.Pool().Get()}
		defer psc.Close()
		if err := psc.Subscribe(channel); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if m, ok := psc.ReceiveContext(ctx).(redis.Subscription); !ok || m.Kind != "subscribe" {
			t.Fatalf("subscribe reply %#v", m)
		}
		if n, _ := redis.Int(do(t, b, "PUBLISH", channel, "hello"), nil); n != 1 {
			t.Fatalf("PUBLISH reached %d subscribers, want 1", n)
		}
		switch m := psc.ReceiveContext(ctx).(type) {
		case redis.Message:
			if m.Channel != channel || string(m.Data) != "hello" {
				t.Fatalf("got %q on %q", m.Data, m.Channel)
			}
		default:
			t.Fatalf("received %#v, want a message", m)
		}
	})
}
