package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/backoff"
	"github.com/berth-dev/berth/host/internal/pubsub"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// wait bounds every wait on a condition.
const wait = 10 * time.Second

// fast is the reconnect backoff of tests that break connections.
var fast = backoff.Policy{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

type bundle struct {
	srv *redistest.Server
	ns  string
}

// setup uses the shared server, or a server of the test's own when own is
// set (for tests that kill connections or the server).
func setup(t *testing.T, own bool) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	if own {
		srv = redistest.Start(t)
	}
	return &bundle{srv: srv, ns: srv.Namespace(t)}
}

func (b *bundle) channel(name string) string { return b.ns + ":" + name }

// do runs one command on a connection of its own, so that it works at
// once after the server restarted.
func (b *bundle) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	c, err := redis.Dial("tcp", b.srv.Addr(), redis.DialConnectTimeout(wait), redis.DialReadTimeout(wait))
	if err != nil {
		t.Fatalf("dial %s: %v", b.srv.Addr(), err)
	}
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

// publish publishes and returns how many subscribers got the message.
func (b *bundle) publish(t *testing.T, channel, payload string) int64 {
	t.Helper()
	n, err := redis.Int64(b.do(t, "PUBLISH", channel, payload), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pipeline publishes msgs[i] on channels[i] in one round trip, so that the
// listener gets them back to back, and returns the subscriber counts.
func (b *bundle) pipeline(t *testing.T, channels, msgs []string) []int64 {
	t.Helper()
	c, err := redis.Dial("tcp", b.srv.Addr(), redis.DialReadTimeout(wait))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range msgs {
		if err := c.Send("PUBLISH", channels[i], msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	counts := make([]int64, len(msgs))
	for i := range msgs {
		if counts[i], err = redis.Int64(c.Receive()); err != nil {
			t.Fatal(err)
		}
	}
	return counts
}

// listen starts a listener on a pool of its own, stopped in t.Cleanup.
func (b *bundle) listen(t *testing.T, opts pubsub.Options) *pubsub.Listener {
	t.Helper()
	opts.Pool = b.srv.Pool(t)
	l := pubsub.New(opts)
	t.Cleanup(func() { within(t, "Stop", l.Stop) })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := l.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return l
}

// recorder collects what each channel's handler got.
type recorder struct {
	mu  sync.Mutex
	got map[string][]string
}

func newRecorder() *recorder { return &recorder{got: map[string][]string{}} }

func (r *recorder) handlers(channels ...string) map[string]func(string) {
	hs := map[string]func(string){}
	for _, ch := range channels {
		hs[ch] = func(payload string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.got[ch] = append(r.got[ch], payload)
		}
	}
	return hs
}

func (r *recorder) get(ch string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[ch])
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.got {
		n += len(v)
	}
	return n
}

// waitFor polls cond every few ms until it holds, for at most wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// within runs f and fails the test unless it returns within wait.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("%s did not return within %v", what, wait)
	}
}

// connects counts OnConnect runs.
type connects struct {
	n  atomic.Int64
	ch chan int64
}

func newConnects() *connects { return &connects{ch: make(chan int64, 100)} }

func (c *connects) onConnect() { c.ch <- c.n.Add(1) }

// next waits for the next OnConnect run and returns its number.
func (c *connects) next(t *testing.T) int64 {
	t.Helper()
	select {
	case n := <-c.ch:
		return n
	case <-time.After(wait):
		t.Fatalf("no OnConnect within %v (%d so far)", wait, c.n.Load())
		return 0
	}
}

func TestDelivers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		channels []string
	}{
		{"OneChannel", []string{"a"}},
		{"ThreeChannels", []string{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, false)
			r := newRecorder()
			var channels []string
			for _, c := range tc.channels {
				channels = append(channels, b.channel(c))
			}
			b.listen(t, pubsub.Options{Handlers: r.handlers(channels...)})
			const per = 100
			other := b.channel("unsubscribed")
			var chs, msgs []string
			for i := range per {
				chs, msgs = append(chs, other), append(msgs, fmt.Sprintf("other-%d", i))
				for _, ch := range channels {
					chs, msgs = append(chs, ch), append(msgs, fmt.Sprintf("%s-%d", ch, i))
				}
			}
			for i, n := range b.pipeline(t, chs, msgs) {
				want := int64(1)
				if chs[i] == other {
					want = 0
				}
				if n != want {
					t.Fatalf("PUBLISH %s reached %d subscribers, want %d", chs[i], n, want)
				}
			}
			waitFor(t, "every message", func() bool { return r.total() >= per*len(channels) })
			for _, ch := range channels {
				var want []string
				for i := range per {
					want = append(want, fmt.Sprintf("%s-%d", ch, i))
				}
				if got := r.get(ch); !slices.Equal(got, want) {
					t.Fatalf("%s's handler got %q, want %q", ch, got, want)
				}
			}
			if n := r.total(); n != per*len(channels) {
				t.Fatalf("handlers got %d messages, want %d", n, per*len(channels))
			}
		})
	}
}

func TestStartConfirmsSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	const rounds = 20
	for i := range rounds {
		r := newRecorder()
		channels := []string{b.channel(fmt.Sprint("a", i)), b.channel(fmt.Sprint("b", i)), b.channel(fmt.Sprint("c", i)), b.channel(fmt.Sprint("d", i))}
		l := b.listen(t, pubsub.Options{Handlers: r.handlers(channels...)})
		// No waiting: Start returned, so every channel is subscribed.
		for _, ch := range channels {
			if n := b.publish(t, ch, "now"); n != 1 {
				t.Fatalf("round %d: PUBLISH %s right after Start reached %d subscribers, want 1", i, ch, n)
			}
		}
		waitFor(t, "the messages", func() bool { return r.total() == len(channels) })
		within(t, "Stop", l.Stop)
	}
}

func TestOnConnectAfterSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	r := newRecorder()
	ch := b.channel("a")
	c := newConnects()
	type result struct {
		n   int64
		err error
	}
	receivers := make(chan result, 10)
	b.listen(t, pubsub.Options{Handlers: r.handlers(ch, b.channel("b")), OnConnect: func() {
		// A consumer catching up on what it missed: the subscription is
		// in place already, so nothing published from now on is missed.
		var res result
		if conn, err := redis.Dial("tcp", b.srv.Addr()); err != nil {
			res.err = err
		} else {
			res.n, res.err = redis.Int64(conn.Do("PUBLISH", ch, "from OnConnect"))
			conn.Close()
		}
		receivers <- res
		c.onConnect()
	}})
	if n := c.next(t); n != 1 {
		t.Fatalf("OnConnect run %d, want 1", n)
	}
	if res := <-receivers; res.err != nil || res.n != 1 {
		t.Fatalf("a message published from OnConnect reached %d subscribers (%v), want 1 (OnConnect ran before the subscription)", res.n, res.err)
	}
	b.publish(t, ch, "later")
	waitFor(t, "both messages", func() bool { return len(r.get(ch)) == 2 })
	if got := r.get(ch); !slices.Equal(got, []string{"from OnConnect", "later"}) {
		t.Fatalf("handler got %q", got)
	}
	if n := c.n.Load(); n != 1 {
		t.Fatalf("OnConnect ran %d times without a reconnect, want 1", n)
	}
}

func TestReconnects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		pingEvery time.Duration
		rounds    int
		// lose makes the listener lose its connection.
		lose func(t *testing.T, b *bundle, l *pubsub.Listener)
	}{
		{"ClientKill", 0, 3, func(t *testing.T, b *bundle, _ *pubsub.Listener) {
			if n, _ := redis.Int64(b.do(t, "CLIENT", "KILL", "TYPE", "pubsub"), nil); n != 1 {
				t.Fatalf("CLIENT KILL TYPE pubsub killed %d connections, want 1", n)
			}
		}},
		{"ServerRestart", 0, 2, func(t *testing.T, b *bundle, _ *pubsub.Listener) { b.srv.Restart(t) }},
		// The host asks for a new connection (the Redis primary moved).
		{"Reconnect", 0, 3, func(t *testing.T, b *bundle, l *pubsub.Listener) { l.Reconnect() }},
		// The connection stays open but nothing answers, pings included,
		// for longer than three ping intervals.
		{"ServerUnresponsive", 50 * time.Millisecond, 2, func(t *testing.T, b *bundle, _ *pubsub.Listener) {
			b.do(t, "CLIENT", "PAUSE", 400, "ALL")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, true)
			r := newRecorder()
			ch := b.channel("a")
			c := newConnects()
			l := b.listen(t, pubsub.Options{Handlers: r.handlers(ch), OnConnect: c.onConnect, Reconnect: fast, PingEvery: tc.pingEvery})
			c.next(t)
			want := []string{"m0"}
			if n := b.publish(t, ch, "m0"); n != 1 {
				t.Fatalf("PUBLISH reached %d subscribers, want 1", n)
			}
			waitFor(t, "m0", func() bool { return len(r.get(ch)) == 1 })
			for i := 1; i <= tc.rounds; i++ {
				before := c.n.Load()
				tc.lose(t, b, l)
				// Back by itself, and OnConnect says so (for a catch-up).
				for c.next(t) <= before {
				}
				msg := fmt.Sprint("m", i)
				if n := b.publish(t, ch, msg); n != 1 {
					t.Fatalf("round %d: after OnConnect, PUBLISH reached %d subscribers, want 1", i, n)
				}
				want = append(want, msg)
				waitFor(t, msg, func() bool { return len(r.get(ch)) >= len(want) })
			}
			if got := r.get(ch); !slices.Equal(got, want) {
				t.Fatalf("handler got %q, want %q", got, want)
			}
		})
	}
}

// fake is a TCP server on loopback that either closes connections at
// once or never answers, until the test ends.
type fake struct {
	pool *redis.Pool
	open atomic.Int64 // connections the client has not closed
}

func fakeRedis(t *testing.T, silent bool) *fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !silent {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			f.open.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c) // until the client closes it
				f.open.Add(-1)
			}()
		}
	}()
	f.pool = &redis.Pool{DialContext: func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", l.Addr().String())
	}}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		f.pool.Close()
	})
	return f
}

func TestStartContextDone(t *testing.T) {
	t.Parallel()
	shared := func(t *testing.T) (*redis.Pool, *fake) { return redistest.Shared(t).Pool(t), nil }
	refusing := func(t *testing.T) (*redis.Pool, *fake) { f := fakeRedis(t, false); return f.pool, f }
	silent := func(t *testing.T) (*redis.Pool, *fake) { f := fakeRedis(t, true); return f.pool, f }
	cancelled := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	}
	past := func() (context.Context, context.CancelFunc) {
		return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	}
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 100*time.Millisecond)
	}
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) (*redis.Pool, *fake)
		ctx   func() (context.Context, context.CancelFunc)
		isErr error
	}{
		{"Cancelled", shared, cancelled, context.Canceled},
		{"DeadlinePassed", shared, past, context.DeadlineExceeded},
		{"RedisRefuses", refusing, short, context.DeadlineExceeded},
		{"RedisSilent", silent, short, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, f := tc.redis(t)
			r := newRecorder()
			l := pubsub.New(pubsub.Options{Pool: pool, Handlers: r.handlers("{" + t.Name() + "}:a"), Reconnect: fast})
			ctx, cancel := tc.ctx()
			defer cancel()
			var err error
			within(t, "Start", func() { err = l.Start(ctx) })
			if !errors.Is(err, tc.isErr) {
				t.Fatalf("Start = %v, want %v", err, tc.isErr)
			}
			// Start stopped what it started: the connection it waited on
			// is closed (and goleak in TestMain sees no goroutine left).
			if f != nil {
				waitFor(t, "the listener's connections to close", func() bool { return f.open.Load() == 0 })
			}
			within(t, "Stop after a failed Start", l.Stop)
		})
	}
}

func TestStop(t *testing.T) {
	t.Parallel()

	t.Run("BeforeStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		r := newRecorder()
		ch := b.channel("a")
		l := pubsub.New(pubsub.Options{Pool: b.srv.Pool(t), Handlers: r.handlers(ch)})
		within(t, "Stop before Start", l.Stop)
		within(t, "second Stop before Start", l.Stop)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := l.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { within(t, "Stop", l.Stop) })
		b.publish(t, ch, "x")
		waitFor(t, "the message", func() bool { return len(r.get(ch)) == 1 })
	})

	t.Run("Twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		l := b.listen(t, pubsub.Options{Handlers: newRecorder().handlers(b.channel("a"))})
		within(t, "Stop", l.Stop)
		within(t, "second Stop", l.Stop)
		waitFor(t, "the subscription to go", func() bool { return b.publish(t, b.channel("a"), "x") == 0 })
	})

	t.Run("WaitsForHandler", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		ch := b.channel("a")
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		var returned atomic.Bool
		l := b.listen(t, pubsub.Options{Handlers: map[string]func(string){ch: func(string) {
			entered <- struct{}{}
			select {
			case <-release:
			case <-t.Context().Done(): // the test failed: let Stop end
			}
			returned.Store(true)
		}}})
		b.publish(t, ch, "x")
		select {
		case <-entered:
		case <-time.After(wait):
			t.Fatal("the handler did not run")
		}
		stopped := make(chan bool, 1)
		go func() {
			l.Stop()
			stopped <- returned.Load()
		}()
		select {
		case <-stopped:
			t.Fatal("Stop returned while a handler ran")
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		select {
		case ok := <-stopped:
			if !ok {
				t.Fatal("Stop returned before the handler did")
			}
		case <-time.After(wait):
			t.Fatal("Stop did not return after the handler did")
		}
	})

	t.Run("NoHandlerAfterStop", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		chs := []string{b.channel("a"), b.channel("b")}
		var stopped atomic.Bool
		var handled, late atomic.Int64
		handlers := map[string]func(string){}
		for _, ch := range chs {
			handlers[ch] = func(string) {
				handled.Add(1)
				if stopped.Load() {
					late.Add(1)
				}
			}
		}
		l := b.listen(t, pubsub.Options{Handlers: handlers})
		// Messages keep coming while the listener stops.
		quit := make(chan struct{})
		flood := make(chan error, 1)
		go func() {
			c, err := redis.Dial("tcp", b.srv.Addr())
			if err != nil {
				flood <- err
				return
			}
			defer c.Close()
			for i := 0; i < 100_000; i++ {
				select {
				case <-quit:
					flood <- nil
					return
				default:
				}
				if _, err := c.Do("PUBLISH", chs[i%2], "x"); err != nil {
					flood <- err
					return
				}
			}
			flood <- nil
		}()
		waitFor(t, "the flood to reach the handlers", func() bool { return handled.Load() >= 50 })
		within(t, "Stop", l.Stop)
		stopped.Store(true)
		waitFor(t, "the subscription to go", func() bool { return b.publish(t, chs[0], "x") == 0 })
		close(quit)
		if err := <-flood; err != nil {
			t.Fatal(err)
		}
		if n := late.Load(); n != 0 {
			t.Fatalf("%d handler runs after Stop returned", n)
		}
	})
}

// A second Start does nothing: one loop, one subscription (a second loop
// would deliver every message twice and leak past Stop).
func TestStartTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	r := newRecorder()
	ch := b.channel("a")
	l := b.listen(t, pubsub.Options{Handlers: r.handlers(ch)})
	if err := l.Start(context.Background()); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	// A second loop, if any, subscribes within a few ms: look for it for
	// a second.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); <-time.After(5 * time.Millisecond) {
		if n := b.publish(t, ch, "x"); n != 1 {
			t.Fatalf("after a second Start, a PUBLISH reached %d subscribers, want 1", n)
		}
	}
}

// Start's ctx bounds the start only: cancelling it after Start returned
// leaves the listener subscribed and dispatching until Stop.
func TestStartContextBoundsOnlyTheStart(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	r := newRecorder()
	ch := b.channel("a")
	l := pubsub.New(pubsub.Options{Pool: b.srv.Pool(t), Handlers: r.handlers(ch), PingEvery: time.Hour})
	t.Cleanup(func() { within(t, "Stop", l.Stop) })
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	for range 20 {
		if n := b.publish(t, ch, "x"); n != 1 {
			t.Fatalf("after Start's ctx ended, a PUBLISH reached %d subscribers, want 1", n)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// Stop waits for the OnConnect calls the listener started too (a catch-up
// reading Redis must not outlive its host's teardown).
func TestStopWaitsForOnConnect(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	release := make(chan struct{})
	var running atomic.Bool
	entered := make(chan struct{})
	l := b.listen(t, pubsub.Options{Handlers: newRecorder().handlers(b.channel("a")), OnConnect: func() {
		running.Store(true)
		close(entered)
		<-release
		running.Store(false)
	}})
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("no OnConnect")
	}
	stopped := make(chan struct{})
	go func() {
		l.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		still := running.Load()
		close(release)
		if still {
			t.Fatal("Stop returned while OnConnect still ran")
		}
	case <-time.After(200 * time.Millisecond):
		close(release)
		select {
		case <-stopped:
		case <-time.After(wait):
			t.Fatal("Stop did not return after OnConnect did")
		}
	}
}
