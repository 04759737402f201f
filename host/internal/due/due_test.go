package due_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/clock"
	"github.com/berth-dev/berth/host/internal/due"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/fakeclock"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// t0 is where the fake clock starts, a whole second.
var t0 = time.Unix(1_700_000_000, 0)

// waitLimit bounds every wait for the mover's goroutine (real time).
const waitLimit = 10 * time.Second

// knownBug skips a test that shows a bug not fixed yet, unless
// BERTH_KNOWN_BUGS is set: then it runs, and fails.
func knownBug(t *testing.T, bug string) {
	t.Helper()
	if os.Getenv("BERTH_KNOWN_BUGS") == "" {
		t.Skipf("known bug (set BERTH_KNOWN_BUGS=1 to see it fail): %s", bug)
	}
}

// napClock is the fake clock; every wait the loop sets its timer to after
// a run is reported on naps, once the timer is set. A nap received means a
// wake-up is over and the mover sleeps (or is about to) until the clock
// moves or it is kicked.
type napClock struct {
	*fakeclock.Clock
	naps chan time.Duration
}

func (c *napClock) NewTimer(d time.Duration) clock.Timer {
	return &napTimer{Timer: c.Clock.NewTimer(d), naps: c.naps}
}

type napTimer struct {
	clock.Timer
	naps chan time.Duration
}

func (t *napTimer) Reset(d time.Duration) bool {
	active := t.Timer.Reset(d)
	select {
	case t.naps <- d:
	default: // a mover that spins: its test fails on the naps it got
	}
	return active
}

// syncBuffer is a log output that a test may read while a logger writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type bundle struct {
	clk  *fakeclock.Clock
	naps chan time.Duration
	st   *store.Store
	keys store.Keys
	logs *syncBuffer
}

// setup returns a store on a namespace of its own and on a fake clock at
// t0.
func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	b := &bundle{clk: fakeclock.New(t0), naps: make(chan time.Duration, 100), logs: &syncBuffer{}}
	b.st = store.New(srv.Pool(t), store.Options{Namespace: srv.Namespace(t), Now: b.clk.Now})
	b.keys = b.st.Keys()
	return b
}

// mover returns a mover with opts (by default of the bundle's store, for
// the name DEMO); its timers report on b.naps and it logs into b.logs.
func (b *bundle) mover(t *testing.T, opts due.Options) *due.Mover {
	t.Helper()
	if opts.Store == nil {
		opts.Store = b.st
	}
	if opts.Names == nil {
		opts.Names = []string{"DEMO"}
	}
	opts.Clock = &napClock{Clock: b.clk, naps: b.naps}
	opts.Logger = hclog.New(&hclog.LoggerOptions{Output: b.logs, Level: hclog.Trace})
	m := due.New(opts)
	t.Cleanup(m.Stop)
	return m
}

// start starts a mover with opts.
func (b *bundle) start(t *testing.T, opts due.Options) *due.Mover {
	t.Helper()
	m := b.mover(t, opts)
	m.Start(context.Background())
	return m
}

// schedule stores a Scheduled job of name that runs at runAt (seconds
// after t0) and returns its ID.
func (b *bundle) schedule(t *testing.T, name string, runAt int64) string {
	t.Helper()
	now := b.st.Now()
	st := &job.Stats{ID: job.NewID(), Name: name, Kind: job.KindScheduled, Status: job.Scheduled,
		RunAt: t0.Unix() + runAt, EnqueueTime: now, UpdateTime: now, Revision: now}
	st.RefLink = job.RefLink(st.ID)
	if _, err := b.st.Create(context.Background(), st); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return st.ID
}

func (b *bundle) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	c := b.st.Pool().Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

// zadd puts a gocraft/work entry of job name and id in set at (seconds
// after t0).
func (b *bundle) zadd(t *testing.T, set, name, id string, at int64) {
	t.Helper()
	entry := fmt.Sprintf(`{"name":%q,"id":%q,"t":%d,"args":{}}`, name, id, t0.Unix())
	b.do(t, "ZADD", set, t0.Unix()+at, entry)
}

// ids returns the job IDs of gocraft/work entries, sorted.
func ids(t *testing.T, entries []string) []string {
	t.Helper()
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		var w struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(e), &w); err != nil {
			t.Fatalf("entry %q: %v", e, err)
		}
		out = append(out, w.ID)
	}
	slices.Sort(out)
	return out
}

// queued returns the IDs of the jobs in the queue of name, sorted.
func (b *bundle) queued(t *testing.T, name string) []string {
	t.Helper()
	v, err := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs(name), 0, -1), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ids(t, v)
}

// waiting returns the IDs of the jobs in set (scheduled or retry), sorted.
func (b *bundle) waiting(t *testing.T, set string) []string {
	t.Helper()
	v, err := redis.Strings(b.do(t, "ZRANGE", set, 0, -1), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ids(t, v)
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// doorbell subscribes to the doorbell channel; the subscription is
// confirmed when it returns.
func (b *bundle) doorbell(t *testing.T) *redis.PubSubConn {
	t.Helper()
	psc := &redis.PubSubConn{Conn: b.st.Pool().Get()}
	t.Cleanup(func() { _ = psc.Close() })
	if err := psc.Subscribe(b.keys.Doorbell()); err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	if v, ok := psc.ReceiveWithTimeout(waitLimit).(redis.Subscription); !ok || v.Channel != b.keys.Doorbell() {
		t.Fatalf("no confirmation of the subscription: %#v", v)
	}
	return psc
}

// rung returns the messages of the doorbell since the last call (or the
// subscription), in order: it publishes an end marker and reads up to it.
func (b *bundle) rung(t *testing.T, psc *redis.PubSubConn) []string {
	t.Helper()
	const marker = "\x00end-of-test-messages"
	b.do(t, "PUBLISH", b.keys.Doorbell(), marker)
	var out []string
	for {
		switch v := psc.ReceiveWithTimeout(waitLimit).(type) {
		case redis.Message:
			if string(v.Data) == marker {
				return out
			}
			out = append(out, string(v.Data))
		case error:
			t.Fatalf("doorbell: %v (so far %q)", v, out)
		default:
			t.Fatalf("doorbell: unexpected reply %#v", v)
		}
	}
}

func wantRung(t *testing.T, b *bundle, psc *redis.PubSubConn, want ...string) {
	t.Helper()
	if got := b.rung(t, psc); !slices.Equal(got, want) {
		t.Fatalf("the doorbell rang %q, want %q", got, want)
	}
}

// nap waits for the end of the mover's next wake-up and returns how long
// it then sleeps.
func (b *bundle) nap(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-b.naps:
		return d
	case <-time.After(waitLimit):
		t.Fatal("the mover never went back to sleep")
		return 0
	}
}

func (b *bundle) wantNap(t *testing.T, want time.Duration) {
	t.Helper()
	if got := b.nap(t); got != want {
		t.Fatalf("the mover sleeps %s, want %s", got, want)
	}
}

// noNap fails if the mover woke up since the last nap.
func (b *bundle) noNap(t *testing.T) {
	t.Helper()
	select {
	case d := <-b.naps:
		t.Fatalf("an unexpected wake-up (then a sleep of %s)", d)
	default:
	}
}

// asleep waits until the mover sleeps on its timer. It is exact only after
// a wake-up of the timer (Start, or the timer firing): during a kicked
// one the timer keeps waiting.
func (b *bundle) asleep(t *testing.T) {
	t.Helper()
	if !b.clk.WaitTimers(1, waitLimit) {
		t.Fatalf("the mover never went to sleep on its timer (%d timers)", b.clk.Timers())
	}
}

func TestMoverMovesAnEntryAtItsRunTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// put puts a DEMO entry due at +10s into a set; it returns its ID.
		put func(t *testing.T, b *bundle) string
		set func(k store.Keys) string
	}{
		{"ScheduledJob", func(t *testing.T, b *bundle) string { return b.schedule(t, "DEMO", 10) }, store.Keys.Scheduled},
		{"RetryEntry", func(t *testing.T, b *bundle) string {
			b.zadd(t, b.keys.Retry(), "DEMO", "r1", 10)
			return "r1"
		}, store.Keys.Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			bell := b.doorbell(t)
			id := tt.put(t, b)
			m := b.start(t, due.Options{MaxWait: time.Minute})
			b.wantNap(t, 10*time.Second)
			b.asleep(t)
			b.clk.Advance(9 * time.Second)
			if n := b.clk.Timers(); n != 1 {
				t.Fatalf("the mover woke up a second early (%d timers)", n)
			}
			// Looking a second early moves nothing.
			m.Kick()
			b.wantNap(t, time.Second)
			wantIDs(t, "queue", b.queued(t, "DEMO"), nil)
			wantIDs(t, "waiting", b.waiting(t, tt.set(b.keys)), []string{id})
			wantRung(t, b, bell)
			b.clk.Advance(time.Second)
			b.wantNap(t, time.Minute)
			wantIDs(t, "queue", b.queued(t, "DEMO"), []string{id})
			wantIDs(t, "waiting", b.waiting(t, tt.set(b.keys)), nil)
			wantRung(t, b, bell, "DEMO")
		})
	}
}

func TestMoverSleepsUntilTheNextEntryButNoLongerThanMaxWait(t *testing.T) {
	t.Parallel()
	type entry struct {
		retry bool
		at    int64 // s after t0
	}
	tests := []struct {
		name    string
		maxWait time.Duration
		// start is the clock's start after t0.
		start   time.Duration
		entries []entry
		// first is the first sleep, then the sleep after it.
		first, then time.Duration
	}{
		{"NothingWaiting", 5 * time.Second, 0, nil, 5 * time.Second, 5 * time.Second},
		{"DefaultMaxWait", 0, 0, nil, 5 * time.Second, 5 * time.Second},
		{"NextWithinMaxWait", 5 * time.Second, 0, []entry{{false, 3}}, 3 * time.Second, 5 * time.Second},
		{"NextBeyondMaxWait", 5 * time.Second, 0, []entry{{false, 8}}, 5 * time.Second, 3 * time.Second},
		{"NextFarAway", 5 * time.Second, 0, []entry{{false, 3600}}, 5 * time.Second, 5 * time.Second},
		{"ToTheStartOfTheDueSecond", 5 * time.Second, 500 * time.Millisecond, []entry{{false, 3}}, 2500 * time.Millisecond, 5 * time.Second},
		{"EarliestOfBothSets", time.Minute, 0, []entry{{false, 9}, {true, 4}}, 4 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.clk.Advance(tt.start)
			for i, e := range tt.entries {
				set := b.keys.Scheduled()
				if e.retry {
					set = b.keys.Retry()
				}
				b.zadd(t, set, "DEMO", strconv.Itoa(i), e.at)
			}
			b.start(t, due.Options{MaxWait: tt.maxWait})
			b.wantNap(t, tt.first)
			b.asleep(t)
			b.clk.Advance(tt.first - time.Nanosecond)
			if n := b.clk.Timers(); n != 1 {
				t.Fatalf("the mover woke up early (%d timers)", n)
			}
			b.noNap(t)
			b.clk.Advance(time.Nanosecond)
			b.wantNap(t, tt.then)
		})
	}
}

func TestMoverLooksAtOnceWhenTold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tell func(m *due.Mover, runAt int64)
	}{
		{"OnTimer", func(m *due.Mover, runAt int64) { m.OnTimer(strconv.FormatInt(runAt, 10)) }},
		{"Kick", func(m *due.Mover, _ int64) { m.Kick() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := b.start(t, due.Options{MaxWait: time.Minute})
			b.wantNap(t, time.Minute)
			b.asleep(t)
			b.clk.Advance(10 * time.Second)
			// Scheduled two seconds from now, well within the current
			// wait.
			id := b.schedule(t, "DEMO", 12)
			b.noNap(t)
			tt.tell(m, t0.Unix()+12)
			b.wantNap(t, 2*time.Second)
			b.clk.Advance(2 * time.Second)
			b.wantNap(t, time.Minute)
			wantIDs(t, "queue", b.queued(t, "DEMO"), []string{id})
		})
	}
}

func TestMoverLeavesOtherNamesAndGoesBackToSleep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bell := b.doorbell(t)
	for _, id := range []string{"o1", "o2", "o3"} {
		b.zadd(t, b.keys.Scheduled(), "OTHER", id, -5)
	}
	b.zadd(t, b.keys.Retry(), "OTHER", "o4", -5)
	mine := b.schedule(t, "DEMO", 3)
	b.start(t, due.Options{MaxWait: time.Minute})
	// Due entries it does not serve: it sleeps until its own next one.
	b.asleep(t)
	b.wantNap(t, 3*time.Second)
	b.noNap(t)
	b.clk.Advance(3 * time.Second)
	b.wantNap(t, time.Minute)
	b.asleep(t)
	wantIDs(t, "DEMO queue", b.queued(t, "DEMO"), []string{mine})
	wantIDs(t, "OTHER queue", b.queued(t, "OTHER"), nil)
	wantIDs(t, "scheduled", b.waiting(t, b.keys.Scheduled()), []string{"o1", "o2", "o3"})
	wantIDs(t, "retry", b.waiting(t, b.keys.Retry()), []string{"o4"})
	wantRung(t, b, bell, "DEMO")
}

// TestMoverWithMoreEntriesOfOtherNamesThanABatch: when at least Batch due
// entries of a set belong to names the host does not serve, the move
// script reads only those (ZRANGEBYSCORE ... LIMIT 0 Batch), moves none,
// and, the batch being full, answers as next the score of the set's first
// entry, which is due: moveDue returns a wait of 0, so the mover spins on
// Redis without end and never reaches its own due entries behind them.
func TestMoverWithMoreEntriesOfOtherNamesThanABatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"o1", "o2", "o3"} {
		b.zadd(t, b.keys.Scheduled(), "OTHER", id, -5)
	}
	mine := b.schedule(t, "DEMO", -1)
	b.start(t, due.Options{MaxWait: time.Minute, Batch: 2})
	if d := b.nap(t); d <= 0 {
		t.Errorf("the mover sleeps %s: it spins", d)
	}
	wantIDs(t, "DEMO queue", b.queued(t, "DEMO"), []string{mine})
}

func TestMoverMovesMoreThanABatchInOneWakeUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch int
	}{
		{"BatchOfOne", 1},
		{"BatchOfThree", 3},
		{"BatchOfAll", 11},
		{"DefaultBatch", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			bell := b.doorbell(t)
			var want []string
			for range 7 {
				want = append(want, b.schedule(t, "DEMO", 5))
			}
			for i := range 4 {
				id := "r" + strconv.Itoa(i)
				b.zadd(t, b.keys.Retry(), "DEMO", id, 5)
				want = append(want, id)
			}
			b.start(t, due.Options{MaxWait: time.Minute, Batch: tt.batch})
			b.wantNap(t, 5*time.Second)
			b.asleep(t)
			b.clk.Advance(5 * time.Second)
			// One wake-up moves all and sleeps for MaxWait: nothing is left.
			b.wantNap(t, time.Minute)
			wantIDs(t, "queue", b.queued(t, "DEMO"), want)
			wantIDs(t, "scheduled", b.waiting(t, b.keys.Scheduled()), nil)
			wantIDs(t, "retry", b.waiting(t, b.keys.Retry()), nil)
			wantRung(t, b, bell, slices.Repeat([]string{"DEMO"}, len(want))...)
			b.noNap(t)
		})
	}
}

func TestMoverDropsAndLogsMalformedEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, "ZADD", b.keys.Scheduled(), t0.Unix()-1, "not json")
	b.do(t, "ZADD", b.keys.Retry(), t0.Unix()-1, `{"id":"nameless"}`)
	b.start(t, due.Options{MaxWait: time.Minute})
	b.wantNap(t, time.Minute)
	for _, set := range []string{b.keys.Scheduled(), b.keys.Retry()} {
		if n, _ := redis.Int(b.do(t, "ZCARD", set), nil); n != 0 {
			t.Fatalf("%s still holds %d entries", set, n)
		}
	}
	logs := b.logs.String()
	for _, want := range []string{"[ERROR]", "dropped malformed entries", "count=2"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the log does not say %q:\n%s", want, logs)
		}
	}
}

func TestMoverStopIsSafeTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.mover(t, due.Options{MaxWait: time.Minute})
	m.Stop() // before Start: nothing to do
	m.Start(context.Background())
	b.wantNap(t, time.Minute)
	b.asleep(t)
	m.Stop()
	m.Stop()
	if n := b.clk.Timers(); n != 0 {
		t.Fatalf("%d timers still wait after Stop", n)
	}
	// Started again, it looks at once.
	id := b.schedule(t, "DEMO", 0)
	m.Start(context.Background())
	b.wantNap(t, time.Minute)
	m.Stop()
	wantIDs(t, "queue", b.queued(t, "DEMO"), []string{id})
}
