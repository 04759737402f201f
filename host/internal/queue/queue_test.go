package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/queue"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// wait bounds every wait on a condition.
const wait = 10 * time.Second

type bundle struct {
	srv   *redistest.Server
	redis *redis.Pool
	keys  store.Keys
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	return &bundle{srv: srv, redis: srv.Pool(t), keys: store.NewKeys(srv.Namespace(t))}
}

// slowBeats is a connection on which gocraft/work's heartbeat writes
// (HMSET) take 50 ms, as on a slow Redis.
type slowBeats struct{ redis.Conn }

func (c slowBeats) Send(cmd string, args ...any) error {
	if cmd == "HMSET" {
		<-time.After(50 * time.Millisecond)
	}
	return c.Conn.Send(cmd, args...)
}

// slowBeatsPool is a pool to the bundle's server of slowBeats connections.
func (b *bundle) slowBeatsPool(t *testing.T) *redis.Pool {
	p := &redis.Pool{MaxIdle: 8, Dial: func() (redis.Conn, error) {
		c, err := redis.Dial("tcp", b.srv.Addr())
		return slowBeats{c}, err
	}}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// newPool builds a pool on the bundle's namespace (two workers taking
// "a" jobs that succeed, on the bundle's Redis pool, unless opts say
// otherwise), stopped in t.Cleanup.
func (b *bundle) newPool(t *testing.T, opts queue.Options) *queue.Pool {
	t.Helper()
	if opts.Redis == nil {
		opts.Redis = b.redis
	}
	opts.Namespace = b.keys.WorkNamespace()
	if opts.Concurrency == 0 {
		opts.Concurrency = 2
	}
	if opts.Types == nil {
		opts.Types = []queue.Type{{Name: "a"}}
	}
	if opts.Handler == nil {
		opts.Handler = func(queue.Job) error { return nil }
	}
	if opts.Backoff == nil {
		opts.Backoff = func(int64) time.Duration { return time.Hour }
	}
	p := queue.New(opts)
	t.Cleanup(func() { within(t, "Stop", p.Stop) })
	return p
}

// start is newPool and Start.
func (b *bundle) start(t *testing.T, opts queue.Options) *queue.Pool {
	t.Helper()
	p := b.newPool(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p
}

func (b *bundle) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	c := b.redis.Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

func (b *bundle) int(t *testing.T, cmd string, args ...any) int64 {
	t.Helper()
	v := b.do(t, cmd, args...)
	if v == nil {
		return 0
	}
	n, err := redis.Int64(v, nil)
	if err != nil {
		t.Fatalf("%s %v = %v: %v", cmd, args, v, err)
	}
	return n
}

// entry is a queue entry in gocraft/work's JSON.
type entry struct {
	Name   string         `json:"name"`
	ID     string         `json:"id"`
	T      int64          `json:"t"`
	Args   map[string]any `json:"args"`
	Unique bool           `json:"unique,omitempty"`
	Fails  int64          `json:"fails,omitempty"`
	Err    string         `json:"err,omitempty"`
}

// push queues e as gocraft/work's enqueuer does (LPUSH, taken by RPOP).
func (b *bundle) push(t *testing.T, e entry) {
	t.Helper()
	if e.Args == nil {
		e.Args = map[string]any{}
	}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "LPUSH", b.keys.Jobs(e.Name), raw)
}

// settled says whether no job of name is queued or running: gocraft/work
// takes the lock with the entry and gives it back, with the entry's fate
// (retry or not), in one MULTI once the handler returned.
func (b *bundle) settled(t *testing.T, name string) bool {
	t.Helper()
	return b.int(t, "LLEN", b.keys.Jobs(name)) == 0 && b.int(t, "GET", b.keys.Lock(name)) == 0
}

func (b *bundle) heartbeats(t *testing.T, now time.Time) []*job.WorkerPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	hb, err := queue.Heartbeats(ctx, b.redis, b.keys.WorkNamespace(), time.Minute, now)
	if err != nil {
		t.Fatalf("Heartbeats: %v", err)
	}
	return hb
}

// show spells out a list of worker pools.
func show(hb []*job.WorkerPool) string {
	var b strings.Builder
	b.WriteString("[")
	for i, h := range hb {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%+v", *h)
	}
	return b.String() + "]"
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

// receive takes the next value of ch, within wait.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s within %v", what, wait)
		panic("unreachable")
	}
}

// gate holds handlers until it is opened, or until the test ends (its
// context is done before the cleanups stop the pools, which wait for
// their handlers).
type gate struct {
	ch   chan struct{}
	once sync.Once
	done <-chan struct{}
}

func newGate(t *testing.T) *gate { return &gate{ch: make(chan struct{}), done: t.Context().Done()} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait returns once the gate is open or the test is over.
func (g *gate) wait() {
	select {
	case <-g.ch:
	case <-g.done:
	}
}

func TestStartWaitsForHeartbeat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		slowBeats bool
	}{
		{"Redis", false},
		// The pools' heartbeat writes are slow: Start must wait for its
		// own, not return on the ones of the pools started before it.
		{"SlowHeartbeatWrites", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var pool *redis.Pool
			if tc.slowBeats {
				pool = b.slowBeatsPool(t)
			}
			types := []queue.Type{{Name: "b"}, {Name: "a", MaxConcurrency: 3}}
			var ids []string
			for i := range 3 {
				b.start(t, queue.Options{Redis: pool, Concurrency: uint(i + 1), Types: types})
				// No polling: Start returned, so the pool is listed
				// already, next to the ones started before it.
				hb := b.heartbeats(t, time.Now())
				if len(hb) != i+1 {
					t.Fatalf("after Start of pool %d, Heartbeats lists %d pools, want %d", i+1, len(hb), i+1)
				}
				var mine *job.WorkerPool
				for _, h := range hb {
					if !slices.Contains(ids, h.WorkerPoolID) {
						mine = h
					}
				}
				if mine == nil {
					t.Fatalf("Heartbeats lists %s, no new pool", show(hb))
				}
				ids = append(ids, mine.WorkerPoolID)
				now := time.Now().Unix()
				if mine.Status != job.PoolHealthy || mine.Concurrency != uint(i+1) || !slices.Equal(mine.JobNames, []string{"a", "b"}) ||
					mine.HeartbeatAt < now-2 || mine.HeartbeatAt > now || mine.StartedAt > mine.HeartbeatAt {
					t.Fatalf("new pool listed as %+v; want Healthy, concurrency %d, jobs [a b], a heartbeat of now (%d)", mine, i+1, now)
				}
				if b.int(t, "EXISTS", b.keys.Heartbeat(mine.WorkerPoolID)) != 1 ||
					b.int(t, "SISMEMBER", b.keys.WorkerPools(), mine.WorkerPoolID) != 1 {
					t.Fatalf("pool %s: no heartbeat at %s or not in %s", mine.WorkerPoolID, b.keys.Heartbeat(mine.WorkerPoolID), b.keys.WorkerPools())
				}
			}
			// The same live pools, seen from a time past staleAfter, are
			// dead.
			for _, h := range b.heartbeats(t, time.Now().Add(2*time.Minute)) {
				if h.Status != job.PoolDead {
					t.Fatalf("two minutes on, pool %s is %s, want %s", h.WorkerPoolID, h.Status, job.PoolDead)
				}
			}
		})
	}
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	const beat = int64(1_700_000_000)
	const staleAfter = time.Minute
	for _, tc := range []struct {
		name   string
		now    time.Time
		noBeat bool // the pool is in the set without a heartbeat
		want   string
	}{
		{"Fresh", time.Unix(beat, 0), false, job.PoolHealthy},
		{"ClockBehind", time.Unix(beat-3600, 0), false, job.PoolHealthy},
		{"AtStaleAfter", time.Unix(beat, 0).Add(staleAfter), false, job.PoolHealthy},
		{"PastStaleAfter", time.Unix(beat, 0).Add(staleAfter + time.Second), false, job.PoolDead},
		{"LongGone", time.Unix(beat+86400, 0), false, job.PoolDead},
		{"NoHeartbeat", time.Unix(beat, 0), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.do(t, "SADD", b.keys.WorkerPools(), "p1")
			if !tc.noBeat {
				b.do(t, "HSET", b.keys.Heartbeat("p1"), "heartbeat_at", beat, "started_at", beat-100,
					"job_names", "b,a", "concurrency", 4, "host", "h", "pid", 1, "worker_ids", "w1,w2")
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			hb, err := queue.Heartbeats(ctx, b.redis, b.keys.WorkNamespace(), staleAfter, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if tc.noBeat {
				if len(hb) != 0 {
					t.Fatalf("Heartbeats = %+v, want none (the pool has no heartbeat)", hb[0])
				}
				return
			}
			want := job.WorkerPool{WorkerPoolID: "p1", StartedAt: beat - 100, HeartbeatAt: beat,
				JobNames: []string{"a", "b"}, Concurrency: 4, Status: tc.want}
			if len(hb) != 1 || hb[0].WorkerPoolID != want.WorkerPoolID || hb[0].StartedAt != want.StartedAt ||
				hb[0].HeartbeatAt != want.HeartbeatAt || !slices.Equal(hb[0].JobNames, want.JobNames) ||
				hb[0].Concurrency != want.Concurrency || hb[0].Status != want.Status {
				t.Fatalf("Heartbeats = %s, want [%+v]", show(hb), want)
			}
		})
	}
}

// fakeRedis accepts connections on loopback and either closes them at
// once or never answers, until the test ends.
func fakeRedis(t *testing.T, silent bool) *redis.Pool {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
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
		}
	}()
	p := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", l.Addr().String()) }}
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		p.Close()
	})
	return p
}

func TestHeartbeatsFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		silent  bool
		wantCtx bool
	}{
		{"RedisClosesConnections", false, false},
		{"RedisNeverAnswers", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := fakeRedis(t, tc.silent)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			var hb []*job.WorkerPool
			var err error
			within(t, "Heartbeats", func() { hb, err = queue.Heartbeats(ctx, pool, "{ns}", time.Minute, time.Now()) })
			if err == nil || errors.Is(err, context.DeadlineExceeded) != tc.wantCtx {
				t.Fatalf("Heartbeats = %v, %v; want an error (the context's: %v)", hb, err, tc.wantCtx)
			}
		})
	}
}

func TestStartWithoutRedis(t *testing.T) {
	t.Parallel()
	p := queue.New(queue.Options{Redis: fakeRedis(t, false), Namespace: "{ns}", Concurrency: 2,
		Types: []queue.Type{{Name: "a"}}, Handler: func(queue.Job) error { return nil },
		Backoff: func(int64) time.Duration { return time.Second }})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var err error
	within(t, "Start", func() { err = p.Start(ctx) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v, want the context's deadline", err)
	}
	within(t, "Stop", p.Stop)
}

func TestHandlerGetsEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		enqueue func(t *testing.T, b *bundle) queue.Job // the job the handler must get
	}{
		{"Plain", func(t *testing.T, b *bundle) queue.Job {
			b.push(t, entry{Name: "a", ID: "j1", T: 1_700_000_001})
			return queue.Job{Name: "a", ID: "j1", EnqueuedAt: 1_700_000_001}
		}},
		{"Unique", func(t *testing.T, b *bundle) queue.Job {
			b.push(t, entry{Name: "a", ID: "j2", T: 1_700_000_002, Unique: true})
			return queue.Job{Name: "a", ID: "j2", EnqueuedAt: 1_700_000_002, Unique: true}
		}},
		{"EarlierFails", func(t *testing.T, b *bundle) queue.Job {
			b.push(t, entry{Name: "a", ID: "j3", T: 1_700_000_003, Fails: 3, Err: "boom"})
			return queue.Job{Name: "a", ID: "j3", EnqueuedAt: 1_700_000_003, Fails: 3}
		}},
		{"OtherType", func(t *testing.T, b *bundle) queue.Job {
			b.push(t, entry{Name: "b", ID: "j4", T: 1_700_000_004, Unique: true, Fails: 1})
			return queue.Job{Name: "b", ID: "j4", EnqueuedAt: 1_700_000_004, Unique: true, Fails: 1}
		}},
		{"Enqueuer", func(t *testing.T, b *bundle) queue.Job {
			j, err := work.NewEnqueuer(b.keys.WorkNamespace(), b.redis).Enqueue("a", work.Q{"x": 1})
			if err != nil {
				t.Fatal(err)
			}
			return queue.Job{Name: "a", ID: j.ID, EnqueuedAt: j.EnqueuedAt}
		}},
		{"EnqueuerUnique", func(t *testing.T, b *bundle) queue.Job {
			j, err := work.NewEnqueuer(b.keys.WorkNamespace(), b.redis).EnqueueUnique("b", work.Q{"x": "y"})
			if err != nil || j == nil {
				t.Fatalf("EnqueueUnique = %v, %v", j, err)
			}
			return queue.Job{Name: "b", ID: j.ID, EnqueuedAt: j.EnqueuedAt, Unique: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			got := make(chan queue.Job, 10)
			backoffs := make(chan int64, 10)
			b.start(t, queue.Options{
				Types:   []queue.Type{{Name: "a"}, {Name: "b"}},
				Handler: func(j queue.Job) error { got <- j; return nil },
				Backoff: func(f int64) time.Duration { backoffs <- f; return time.Hour },
			})
			want := tc.enqueue(t, b)
			if j := receive(t, "job", got); j != want {
				t.Fatalf("handler got %+v, want %+v", j, want)
			}
			waitFor(t, "the job to settle", func() bool { return b.settled(t, want.Name) })
			// Handled: gone, without a retry or a dead entry, and run once.
			if n := b.int(t, "ZCARD", b.keys.Retry()); n != 0 {
				t.Fatalf("retry set holds %d entries after a nil handler, want 0", n)
			}
			if n := b.int(t, "ZCARD", b.keys.WorkNamespace()+":dead"); n != 0 {
				t.Fatalf("dead set holds %d entries after a nil handler, want 0", n)
			}
			hb := b.heartbeats(t, time.Now())
			if n := b.int(t, "LLEN", b.keys.InProgress(want.Name, hb[0].WorkerPoolID)); n != 0 {
				t.Fatalf("in-progress list holds %d entries after a nil handler, want 0", n)
			}
			if len(got) != 0 || len(backoffs) != 0 {
				t.Fatalf("after a nil handler: %d more runs, %d Backoff calls; want none", len(got), len(backoffs))
			}
		})
	}
}

func TestHandlerErrorRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fails   int64
		backoff func(fails int64) time.Duration
		wait    int64 // seconds from the failure to the score
	}{
		// Backoff is called with the failure just counted (fails+1), as
		// the retry entry says.
		{"FirstFailure", 0, func(f int64) time.Duration { return time.Duration(f) * 90 * time.Second }, 90},
		{"AfterFourFailures", 4, func(f int64) time.Duration { return time.Duration(f) * time.Hour }, 5 * 3600},
		{"RoundsUp", 2, func(int64) time.Duration { return 1500 * time.Millisecond }, 2},
		{"WholeSeconds", 1, func(int64) time.Duration { return 90 * time.Second }, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			got := make(chan queue.Job, 10)
			backoffs := make(chan int64, 10)
			b.start(t, queue.Options{
				Handler: func(j queue.Job) error { got <- j; return errors.New("redis went away") },
				Backoff: func(f int64) time.Duration { backoffs <- f; return tc.backoff(f) },
			})
			before := time.Now().Unix()
			b.push(t, entry{Name: "a", ID: "r1", T: 1_700_000_000, Fails: tc.fails, Args: map[string]any{"k": "v"}})
			if j := receive(t, "job", got); j.ID != "r1" || j.Fails != tc.fails {
				t.Fatalf("handler got %+v, want job r1 with %d fails", j, tc.fails)
			}
			waitFor(t, "the job to settle", func() bool { return b.settled(t, "a") })
			after := time.Now().Unix()
			if f := receive(t, "Backoff call", backoffs); f != tc.fails+1 {
				t.Fatalf("Backoff(%d), want Backoff(%d) (the entry's fails with this failure)", f, tc.fails+1)
			}
			retry, err := redis.Strings(b.do(t, "ZRANGE", b.keys.Retry(), 0, -1, "WITHSCORES"), nil)
			if err != nil || len(retry) != 2 {
				t.Fatalf("retry set = %q, %v; want one entry", retry, err)
			}
			var e entry
			if err := json.Unmarshal([]byte(retry[0]), &e); err != nil {
				t.Fatal(err)
			}
			if e.Name != "a" || e.ID != "r1" || e.T != 1_700_000_000 || e.Fails != tc.fails+1 || e.Err != "redis went away" || e.Args["k"] != "v" {
				t.Fatalf("retry entry = %s; want job r1 with %d fails and the handler's error", retry[0], tc.fails+1)
			}
			// gocraft/work scores in whole seconds: now + Backoff rounded up.
			score, _ := redis.Int64([]byte(retry[1]), nil)
			if score < before+tc.wait || score > after+tc.wait {
				t.Fatalf("retry score = %d, want between %d and %d (now + %ds)", score, before+tc.wait, after+tc.wait, tc.wait)
			}
			if n := b.int(t, "LLEN", b.keys.Jobs("a")); n != 0 {
				t.Fatalf("queue holds %d entries, want the entry only in the retry set", n)
			}
		})
	}
}

func TestMaxConcurrencyAcrossPools(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit int
	}{
		{"One", 1},
		{"Two", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			const jobs = 12
			g := newGate(t)
			var active, peak, handled atomic.Int64
			started := make(chan int, jobs*2)
			handler := func(pool int) queue.Handler {
				return func(queue.Job) error {
					n := active.Add(1)
					for m := peak.Load(); n > m && !peak.CompareAndSwap(m, n); m = peak.Load() {
					}
					started <- pool
					g.wait()
					active.Add(-1)
					handled.Add(1)
					return nil
				}
			}
			types := []queue.Type{{Name: "a", MaxConcurrency: uint(tc.limit)}}
			for i := range jobs {
				b.push(t, entry{Name: "a", ID: string(rune('A' + i)), T: 1})
			}
			// Pool 1 has a worker more than the limit, and takes as many
			// jobs as the limit allows; they wait on the gate.
			b.start(t, queue.Options{Concurrency: uint(tc.limit + 1), Types: types, Handler: handler(1)})
			for range tc.limit {
				receive(t, "a job start", started)
			}
			// Pool 2, on the same namespace, takes none while they run;
			// nor does pool 1's spare worker. Both look at the queue at
			// once on start and again after 10 ms and 100 ms.
			b.start(t, queue.Options{Concurrency: 3, Types: types, Handler: handler(2)})
			select {
			case p := <-started:
				t.Fatalf("pool %d started a job while %d ran (limit %d)", p, tc.limit, tc.limit)
			case <-time.After(300 * time.Millisecond):
			}
			g.open()
			waitFor(t, "every job to be handled", func() bool { return handled.Load() == jobs })
			waitFor(t, "the lock to be given back", func() bool { return b.settled(t, "a") })
			if p := peak.Load(); p != int64(tc.limit) {
				t.Fatalf("at most %d handlers ran at once, want %d (the limit)", p, tc.limit)
			}
		})
	}
}

func TestWake(t *testing.T) {
	t.Parallel()

	t.Run("BeforeStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := make(chan queue.Job, 1)
		p := b.newPool(t, queue.Options{Handler: func(j queue.Job) error { got <- j; return nil }})
		within(t, "Wake before Start", p.Wake)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		b.push(t, entry{Name: "a", ID: "w1", T: 1})
		if j := receive(t, "job", got); j.ID != "w1" {
			t.Fatalf("handler got %+v, want w1", j)
		}
	})

	t.Run("AfterStop", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.start(t, queue.Options{})
		within(t, "Stop", p.Stop)
		// A wake-up of stopped workers would wait for them forever: it
		// must not start (goleak in TestMain sees a Drain left over).
		within(t, "Wake after Stop", p.Wake)
	})

	t.Run("WhileBusy", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		g := newGate(t)
		got := make(chan queue.Job, 10)
		p := b.start(t, queue.Options{Concurrency: 2, Handler: func(j queue.Job) error {
			got <- j
			if j.ID == "busy" {
				g.wait()
			}
			return nil
		}})
		b.push(t, entry{Name: "a", ID: "busy", T: 1})
		receive(t, "the busy job", got)
		// gocraft/work's Drain returns only after the busy worker's job:
		// Wake must not wait for it.
		within(t, "Wake while a worker is busy", p.Wake)
		b.push(t, entry{Name: "a", ID: "next", T: 2})
		if j := receive(t, "the job enqueued after Wake", got); j.ID != "next" {
			t.Fatalf("handler got %+v, want next", j)
		}
		// The wake-up ends once the busy job ends (goleak checks).
		g.open()
		waitFor(t, "the jobs to settle", func() bool { return b.settled(t, "a") })
	})
}

// A burst of wake-ups while the only worker is busy leaves nothing
// waiting once it is free. (gocraft/work's worker keeps one "drained"
// flag, not a count: had two Drains waited on the same busy worker, it
// would have answered one, and the other would wait forever.)
func TestWakeBurstWhileBusy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan string, 10)
	var g *gate
	var mu sync.Mutex
	p := b.start(t, queue.Options{Concurrency: 1, Handler: func(j queue.Job) error {
		mu.Lock()
		g := g
		mu.Unlock()
		started <- j.ID
		g.wait()
		return nil
	}})
	for i := range 10 {
		mu.Lock()
		g = newGate(t)
		mu.Unlock()
		b.push(t, entry{Name: "a", ID: string(rune('A' + i)), T: 1})
		receive(t, "the busy job", started)
		// Wake-ups for 50 ms while the only worker is busy.
		within(t, "Wakes while the worker is busy", func() {
			for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
				p.Wake()
				<-time.After(time.Millisecond)
			}
		})
		g.open()
		waitFor(t, "the job to settle", func() bool { return b.settled(t, "a") })
	}
	// No job runs: every wake-up has seen the idle worker, Stop has
	// nothing to wait for.
	begin := time.Now()
	within(t, "Stop", p.Stop)
	if d := time.Since(begin); d > 500*time.Millisecond {
		t.Fatalf("Stop took %v with no job running: wake-ups were still waiting", d)
	}
}

func TestStartStopTwice(t *testing.T) {
	t.Parallel()

	t.Run("StartTwice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.start(t, queue.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := p.Start(ctx); err != nil {
			t.Fatalf("second Start: %v", err)
		}
		if hb := b.heartbeats(t, time.Now()); len(hb) != 1 {
			t.Fatalf("after two Starts, %d pools listed, want 1", len(hb))
		}
	})

	t.Run("StopTwice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.start(t, queue.Options{})
		within(t, "Stop", p.Stop)
		within(t, "second Stop", p.Stop)
		// gocraft/work takes its heartbeat away when it stops.
		if hb := b.heartbeats(t, time.Now()); len(hb) != 0 {
			t.Fatalf("after Stop, %d pools listed, want 0", len(hb))
		}
	})

	t.Run("StopBeforeStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := make(chan queue.Job, 1)
		p := b.newPool(t, queue.Options{Handler: func(j queue.Job) error { got <- j; return nil }})
		within(t, "Stop before Start", p.Stop)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		b.push(t, entry{Name: "a", ID: "s1", T: 1})
		if j := receive(t, "job", got); j.ID != "s1" {
			t.Fatalf("handler got %+v, want s1", j)
		}
	})
}

func TestStopWaitsForHandlers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	const running = 3
	started := make(chan struct{}, running)
	var returned atomic.Int64
	p := b.start(t, queue.Options{Concurrency: running, Handler: func(queue.Job) error {
		started <- struct{}{}
		g.wait()
		returned.Add(1)
		return nil
	}})
	for i := range running {
		b.push(t, entry{Name: "a", ID: string(rune('A' + i)), T: 1})
	}
	for range running {
		receive(t, "a handler start", started)
	}
	stopped := make(chan int64, 1)
	go func() {
		p.Stop()
		stopped <- returned.Load()
	}()
	select {
	case n := <-stopped:
		t.Fatalf("Stop returned while %d handlers ran", running-n)
	case <-time.After(200 * time.Millisecond):
	}
	g.open()
	if n := receive(t, "Stop's return", stopped); n != running {
		t.Fatalf("Stop returned when %d of %d handlers had returned", n, running)
	}
	if n := b.int(t, "GET", b.keys.Lock("a")); n != 0 {
		t.Fatalf("lock = %d after Stop, want 0 (every handler's run settled)", n)
	}
}
