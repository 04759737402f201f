package hook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// within bounds every wait on a condition; far longer than any of them
// takes when the deliverer works.
const within = 10 * time.Second

// bundle is what a deliverer test works with: its own namespace on the
// shared Redis and a store on it, the host whose changes queue the events.
type bundle struct {
	srv   *redistest.Server
	ns    string
	store *store.Store
	// observe, when set, is told the events of the bundle's changes, as
	// the host's events bus tells the deliverer.
	observe func(job.Event)
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Shared(t)
	ns := srv.Namespace(t)
	return &bundle{srv: srv, ns: ns, store: store.New(srv.Pool(t), store.Options{Namespace: ns})}
}

// deliverer starts a Deliverer on the bundle's namespace, with a store and
// pool of its own unless opts has a store, stopped in Cleanup; it observes
// the bundle's changes from now on. Start the receivers first, so that
// they are closed after it stops.
func (b *bundle) deliverer(t *testing.T, opts Options) *Deliverer {
	t.Helper()
	if opts.Store == nil {
		opts.Store = store.New(b.srv.Pool(t), store.Options{Namespace: b.ns})
	}
	d := New(opts)
	d.Start(context.Background())
	t.Cleanup(d.Stop)
	b.observe = d.Observe
	return d
}

func (b *bundle) tell(evs []job.Event) {
	if b.observe == nil {
		return
	}
	for _, ev := range evs {
		b.observe(ev)
	}
}

// newJob creates a Pending job whose status hook is url (no event yet).
func (b *bundle) newJob(t *testing.T, url string) string {
	t.Helper()
	now := time.Now().Unix()
	st := &job.Stats{ID: job.NewID(), Name: "DEMO", Kind: job.Generic, Status: job.Pending,
		EnqueueTime: now, UpdateTime: now, Revision: now, WebHookURL: url,
		Parameters: job.Parameters{"image": "demo", "n": 1.5}}
	st.RefLink = job.RefLink(st.ID)
	evs, err := b.store.Create(context.Background(), st)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	b.tell(evs)
	return st.ID
}

// start moves job id to Running (an event) and returns its revision.
func (b *bundle) start(t *testing.T, id string) store.Result {
	t.Helper()
	r, err := b.store.Start(context.Background(), id)
	if err != nil || r.Outcome != store.Moved {
		t.Fatalf("Start %s = %+v, %v", id, r, err)
	}
	b.tell(r.Events)
	return r
}

// checkin records a check-in of running job id (an event) and returns
// its check_in_at.
func (b *bundle) checkin(t *testing.T, id string, rev int64, msg string) int64 {
	t.Helper()
	r, err := b.store.Checkin(context.Background(), id, rev, msg)
	if err != nil || r.Outcome != store.Moved {
		t.Fatalf("Checkin %s = %+v, %v", id, r, err)
	}
	b.tell(r.Events)
	return r.Stats.CheckInAt
}

// succeed moves running job id to Success (an event).
func (b *bundle) succeed(t *testing.T, id string, rev int64) {
	t.Helper()
	r, err := b.store.Move(context.Background(), store.Change{ID: id, Revision: rev, To: job.Success, Reason: job.Succeeded})
	if err != nil || r.Outcome != store.Moved {
		t.Fatalf("Move %s to Success = %+v, %v", id, r, err)
	}
	b.tell(r.Events)
}

// run is a whole run of a new job with a hook at url: Running, a check-in
// per message, Success. It returns the job and the labels of the events
// it queued, in order, and the ack their delivery must leave.
func (b *bundle) run(t *testing.T, url string, checkins ...string) (string, []string, job.Ack) {
	t.Helper()
	id := b.newJob(t, url)
	rev := b.start(t, id).Stats.Revision
	want := []string{label(job.Running, "")}
	var at int64
	for _, m := range checkins {
		at = b.checkin(t, id, rev, m)
		want = append(want, label(job.Running, m))
	}
	b.succeed(t, id, rev)
	return id, append(want, label(job.Success, "")), job.Ack{Status: job.Success, Revision: rev, CheckInAt: at}
}

func (b *bundle) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	c := b.store.Pool().Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

// queued is the number of job id's events waiting for delivery.
func (b *bundle) queued(t *testing.T, id string) int {
	t.Helper()
	n, _ := redis.Int(b.do(t, "LLEN", b.store.Keys().HookEvents(id)), nil)
	return n
}

// due is when job id's next event is due; false when none is.
func (b *bundle) due(t *testing.T, id string) (time.Time, bool) {
	t.Helper()
	ms, err := redis.Int64(b.do(t, "ZSCORE", b.store.Keys().HooksDue(), id), nil)
	if err == redis.ErrNil {
		return time.Time{}, false
	}
	if err != nil {
		t.Fatalf("ZSCORE due %s: %v", id, err)
	}
	return time.UnixMilli(ms), true
}

// attempts is the failed deliveries of job id's first event.
func (b *bundle) attempts(t *testing.T, id string) int {
	t.Helper()
	n, _ := redis.Int(b.do(t, "HGET", b.store.Keys().HookAttempts(), id), nil)
	return n
}

// dueLater tells whether job id's events are due only in the future (a
// failed delivery or a skip by the breaker put them off).
func (b *bundle) dueLater(t *testing.T, id string) bool {
	t.Helper()
	ms, err := redis.Int64(b.do(t, "ZSCORE", b.store.Keys().HooksDue(), id), nil)
	return err == nil && ms > time.Now().UnixMilli()
}

// ack is job id's ack (nil: none).
func (b *bundle) ack(t *testing.T, id string) *job.Ack {
	t.Helper()
	st, err := b.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return st.Ack
}

// waitAck waits until job id's ack is want and nothing of it is queued.
func (b *bundle) waitAck(t *testing.T, id string, want job.Ack) {
	t.Helper()
	var got *job.Ack
	ok := eventually(func() bool {
		got = b.ack(t, id)
		_, due := b.due(t, id)
		return got != nil && *got == want && !due && b.queued(t, id) == 0
	})
	if !ok {
		_, due := b.due(t, id)
		t.Fatalf("job %s: ack %+v, want %+v; %d events still queued (due: %v)", id, got, want, b.queued(t, id), due)
	}
}

func label(st job.Status, checkin string) string {
	if checkin == "" {
		return string(st)
	}
	return string(st) + ": " + checkin
}

// eventually polls cond until it holds (true) or within passes (false).
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// call is one request a receiver got.
type call struct {
	Method, Path, Query, ContentType string
	// Keys are the body's top-level keys, sorted.
	Keys   []string
	Change job.StatusChange
	// Err says why the body is not a status change.
	Err string
	At  time.Time
	// Code is the answer (0 while it is being decided).
	Code int
	// Gone: the sender had given up the request when it was answered.
	Gone bool
}

func (c call) label() string { return label(c.Change.Status, c.Change.CheckIn) }

// answerFunc decides the status of the n-th request (from 0), c; it may
// set headers of w, or block until r's context ends or done is closed.
type answerFunc func(n int, c call, w http.ResponseWriter, r *http.Request, done <-chan struct{}) int

func always(code int) answerFunc {
	return func(int, call, http.ResponseWriter, *http.Request, <-chan struct{}) int { return code }
}

// receiver is a status hook receiver on 127.0.0.1 that records every
// request.
type receiver struct {
	URL    string
	answer answerFunc
	done   chan struct{}

	mu    sync.Mutex
	calls []call
}

func newReceiver(t *testing.T, answer answerFunc) *receiver {
	t.Helper()
	rc := &receiver{answer: answer, done: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	rc.URL = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(rc.done) }) // before Close: no handler blocks it
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), At: time.Now()}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		c.Err = fmt.Sprintf("%v: %q", err, body)
	} else if err := json.Unmarshal(body, &c.Change); err != nil {
		c.Err = fmt.Sprintf("%v: %q", err, body)
	}
	for k := range raw {
		c.Keys = append(c.Keys, k)
	}
	sort.Strings(c.Keys)
	rc.mu.Lock()
	n := len(rc.calls)
	rc.calls = append(rc.calls, c)
	rc.mu.Unlock()
	code := rc.answer(n, c, w, r, rc.done)
	rc.mu.Lock()
	rc.calls[n].Code, rc.calls[n].Gone = code, r.Context().Err() != nil
	rc.mu.Unlock()
	w.WriteHeader(code)
}

// all returns the requests so far, in the order they came.
func (rc *receiver) all() []call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls)
}

// accepted returns the requests answered 200 to a sender still waiting.
func (rc *receiver) accepted() []call {
	var out []call
	for _, c := range rc.all() {
		if c.Code == http.StatusOK && !c.Gone {
			out = append(out, c)
		}
	}
	return out
}

// of keeps the calls about job id.
func of(calls []call, id string) []call {
	var out []call
	for _, c := range calls {
		if c.Change.JobID == id {
			out = append(out, c)
		}
	}
	return out
}

func labels(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.label()
	}
	return out
}

func describe(calls []call) string {
	var b strings.Builder
	for i, c := range calls {
		fmt.Fprintf(&b, "\n  %d: %s %s?%s %s -> %d (gone %v) at %s %s", i, c.Method, c.Path, c.Query, c.label(), c.Code, c.Gone,
			c.At.Format("15:04:05.000"), c.Err)
	}
	return b.String()
}

// waitAccepted waits until rc accepted n requests.
func waitAccepted(t *testing.T, rc *receiver, n int) []call {
	t.Helper()
	if !eventually(func() bool { return len(rc.accepted()) >= n }) {
		t.Fatalf("the receiver accepted %d events within %v, want %d; it got:%s", len(rc.accepted()), within, n, describe(rc.all()))
	}
	return rc.accepted()
}

// TestDeliverInOrder: a job's events reach its receiver one by one, in
// the order they happened, as {"job_id","status","check_in","metadata"}
// JSON, and the job's ack follows.
func TestDeliverInOrder(t *testing.T) {
	t.Parallel()

	t.Run("QueuedBeforeStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, always(http.StatusOK))
		url := rc.URL + "/hook/job?tenant=a"
		id, want, ack := b.run(t, url, "10%", "90%")
		if n := b.queued(t, id); n != len(want) {
			t.Fatalf("%d events queued, want %d", n, len(want))
		}
		b.deliverer(t, Options{})

		got := waitAccepted(t, rc, len(want))
		if !slices.Equal(labels(got), want) {
			t.Fatalf("events %q, want %q:%s", labels(got), want, describe(rc.all()))
		}
		for i, c := range got {
			wantKeys := []string{"job_id", "metadata", "status"}
			if c.Change.CheckIn != "" {
				wantKeys = []string{"check_in", "job_id", "metadata", "status"}
			}
			m := c.Change.Metadata
			switch {
			case c.Method != http.MethodPost || c.Path != "/hook/job" || c.Query != "tenant=a":
				t.Errorf("event %d: %s %s?%s, want POST /hook/job?tenant=a", i, c.Method, c.Path, c.Query)
			case c.ContentType != "application/json":
				t.Errorf("event %d: Content-Type %q", i, c.ContentType)
			case c.Err != "" || !slices.Equal(c.Keys, wantKeys):
				t.Errorf("event %d: body keys %q, want %q %s", i, c.Keys, wantKeys, c.Err)
			case c.Change.JobID != id || m == nil:
				t.Errorf("event %d: job_id %q, metadata %+v; want %s with metadata", i, c.Change.JobID, m, id)
			case m.ID != id || m.Status != c.Change.Status || m.WebHookURL != url || m.Name != "DEMO" ||
				m.Revision != ack.Revision || m.Parameters["image"] != "demo" ||
				(c.Change.CheckIn != "" && m.CheckIn != c.Change.CheckIn):
				t.Errorf("event %d (%s): metadata %+v is not the job's stats at the time", i, c.label(), m)
			}
		}
		if m := got[len(got)-1].Change.Metadata; m.CheckInAt != ack.CheckInAt || m.CheckIn != "90%" {
			t.Errorf("the Success event's stats lost the last check-in: %+v", m)
		}
		b.waitAck(t, id, ack)
		if n := len(rc.all()); n != len(want) {
			t.Fatalf("%d requests for %d events (a 200 must not be sent again):%s", n, len(want), describe(rc.all()))
		}
	})

	// Check-ins within one second share their check_in_at (it never runs
	// ahead of the clock); each is still delivered, in order, after the
	// one before it was accepted.
	t.Run("CheckInsOfOneSecond", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, always(http.StatusOK))
		b.deliverer(t, Options{})
		id := b.newJob(t, rc.URL)
		rev := b.start(t, id).Stats.Revision
		waitAccepted(t, rc, 1)
		var ats []int64
		for _, m := range []string{"one", "two"} {
			ats = append(ats, b.checkin(t, id, rev, m))
			waitAccepted(t, rc, len(ats)+1)
		}
		ats = append(ats, b.checkin(t, id, rev, "three"))
		got := waitAccepted(t, rc, 4)
		if ats[0] != ats[2] {
			t.Fatalf("check-ins of one second at %v: want one check_in_at", ats)
		}
		if want := []string{"Running", "Running: one", "Running: two", "Running: three"}; !slices.Equal(labels(got), want) {
			t.Fatalf("delivered %q, want %q", labels(got), want)
		}
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: rev, CheckInAt: ats[2], CheckInSeq: 3})
	})

	t.Run("AckFollowsEachEvent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, always(http.StatusOK))
		b.deliverer(t, Options{})
		id := b.newJob(t, rc.URL)
		rev := b.start(t, id).Stats.Revision
		waitAccepted(t, rc, 1)
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: rev})
		at := b.checkin(t, id, rev, "half")
		waitAccepted(t, rc, 2)
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: rev, CheckInAt: at, CheckInSeq: 1})
		b.succeed(t, id, rev)
		got := waitAccepted(t, rc, 3)
		b.waitAck(t, id, job.Ack{Status: job.Success, Revision: rev, CheckInAt: at})
		if want := []string{"Running", "Running: half", "Success"}; !slices.Equal(labels(got), want) {
			t.Fatalf("events %q, want %q", labels(got), want)
		}
	})
}

// TestDeliverRetriesUntil200: any answer but 200 fails the delivery; the
// event is sent again after a growing backoff until a 200, and no event
// is lost or skipped.
func TestDeliverRetriesUntil200(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		code int
	}{
		{"InternalServerError", http.StatusInternalServerError},
		{"NoContent", http.StatusNoContent},
		{"Created", http.StatusCreated},
		{"FoundWithoutLocation", http.StatusFound},
		{"NotFound", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			// The first event fails three times, the second once.
			fail := map[int]bool{0: true, 1: true, 2: true, 4: true}
			rc := newReceiver(t, func(n int, _ call, _ http.ResponseWriter, _ *http.Request, _ <-chan struct{}) int {
				if fail[n] {
					return tc.code
				}
				return http.StatusOK
			})
			id, want, ack := b.run(t, rc.URL, "a", "b")
			const base = 10 * time.Millisecond
			// A short MaxIdleWait: see TestDeliverRetryNeedsNoPoll.
			b.deliverer(t, Options{Workers: 4, BackoffBase: base, BackoffMax: 50 * time.Millisecond, MaxIdleWait: 50 * time.Millisecond})

			got := waitAccepted(t, rc, len(want))
			b.waitAck(t, id, ack)
			all := rc.all()
			if !slices.Equal(labels(got), want) || len(all) != len(want)+len(fail) {
				t.Fatalf("accepted %q, want %q; %d requests, want %d:%s", labels(got), want, len(all), len(want)+len(fail), describe(all))
			}
			// Each failed request is followed by the same event: a
			// retry, not the next one.
			for n := range fail {
				if all[n].label() != all[n+1].label() {
					t.Fatalf("request %d (%s) failed and request %d is %s:%s", n, all[n].label(), n+1, all[n+1].label(), describe(all))
				}
			}
			// Backoff: at least base, 2 base, 4 base after the first
			// event's three failures (the jitter only adds; 1ms for the
			// store's millisecond clock).
			for n, least := range []time.Duration{base, 2 * base, 4 * base} {
				if gap := all[n+1].At.Sub(all[n].At); gap < least-time.Millisecond {
					t.Fatalf("retry %d came %v after failure %d, want a backoff of at least %v:%s", n+1, gap, n+1, least, describe(all))
				}
			}
		})
	}
}

// TestDeliverRedirectIsNotFollowed: a 302 is not a 200 either, even when
// its Location answers 200: the event must be POSTed again to the hook,
// not dropped after a GET elsewhere.
func TestDeliverRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(n int, _ call, w http.ResponseWriter, r *http.Request, _ <-chan struct{}) int {
		if r.URL.Path == "/hook" && n == 0 {
			w.Header().Set("Location", "/elsewhere")
			return http.StatusFound
		}
		return http.StatusOK
	})
	id, want, ack := b.run(t, rc.URL+"/hook")
	b.deliverer(t, Options{BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	b.waitAck(t, id, ack)
	var posted []call
	for _, c := range rc.accepted() {
		if c.Method == http.MethodPost && c.Path == "/hook" {
			posted = append(posted, c)
		}
	}
	if !slices.Equal(labels(posted), want) {
		t.Fatalf("the hook accepted %q, want %q; the receiver got:%s", labels(posted), want, describe(rc.all()))
	}
}

// TestDeliverRetryNeedsNoPoll: a failed delivery is sent again after its
// backoff, whichever worker failed it. MaxIdleWait is an hour: only the
// backoff may bring the event back.
func TestDeliverRetryNeedsNoPoll(t *testing.T) {
	t.Parallel()
	const workers = 4
	b := setup(t)
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	// The first request of every job fails.
	rc := newReceiver(t, func(_ int, c call, _ http.ResponseWriter, _ *http.Request, _ <-chan struct{}) int {
		mu.Lock()
		defer mu.Unlock()
		if !seen[c.Change.JobID] {
			seen[c.Change.JobID] = true
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	claims := new(atomic.Int64)
	b.deliverer(t, Options{Store: b.countingStore(t, claims), Workers: workers, MaxIdleWait: time.Hour,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if !eventually(func() bool { return claims.Load() >= workers }) {
		t.Fatalf("%d claims, want one per worker (%d)", claims.Load(), workers)
	}
	// Idle workers wake in turn: within a few events one that is not
	// the poller delivers.
	for round := range workers {
		id := b.newJob(t, rc.URL)
		r := b.start(t, id) // Observe wakes a worker
		began := time.Now()
		if !eventually(func() bool { return len(of(rc.accepted(), id)) == 1 }) {
			t.Fatalf("event %d: not sent again within %v of its failure (backoff 10ms):%s", round, within, describe(of(rc.all(), id)))
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("event %d: delivered %v after it was queued, with a backoff of 10ms", round, took)
		}
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: r.Stats.Revision})
	}
}

// knownBug skips a test that shows a bug of the deliverer not fixed yet,
// unless BERTH_KNOWN_BUGS is set.
func knownBug(t *testing.T, bug string) {
	t.Helper()
	if os.Getenv("BERTH_KNOWN_BUGS") == "" {
		t.Skip("known bug (set BERTH_KNOWN_BUGS=1 to run): " + bug)
	}
}

// TestDeliverBreaker: an endpoint that keeps failing is skipped (its
// events wait, none is sent) while another endpoint's events go out at
// once.
func TestDeliverBreaker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := newReceiver(t, always(http.StatusServiceUnavailable))
	good := newReceiver(t, always(http.StatusOK))
	const (
		workers   = 3
		threshold = 2
		jobs      = 10
	)
	var badJobs []string
	for range jobs {
		id := b.newJob(t, bad.URL+"/hook")
		b.start(t, id)
		badJobs = append(badJobs, id)
	}
	// Retries and skips wait a minute: every request within the test is
	// a first attempt.
	b.deliverer(t, Options{Workers: workers, BreakerThreshold: threshold, BackoffBase: time.Minute, BackoffMax: time.Minute})

	if !eventually(func() bool {
		for _, id := range badJobs {
			if !b.dueLater(t, id) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every event of the failing endpoint was tried or skipped; it got:%s", describe(bad.all()))
	}
	// A skip is not a failed attempt: only the events sent count one.
	counted := 0
	for _, id := range badJobs {
		counted += b.attempts(t, id)
	}
	if counted != len(bad.all()) {
		t.Fatalf("%d failed attempts counted for %d requests: a skip by the breaker counted as one", counted, len(bad.all()))
	}
	// At most threshold-1 failures recorded plus one request per worker
	// before the breaker opens.
	sent := len(bad.all())
	if sent < threshold || sent > threshold-1+workers {
		t.Fatalf("the failing endpoint got %d requests for %d events, want %d to %d (the rest skipped):%s",
			sent, jobs, threshold, threshold-1+workers, describe(bad.all()))
	}
	for _, id := range badJobs {
		if n := b.queued(t, id); n != 1 {
			t.Fatalf("a skipped job has %d events queued, want its 1", n)
		}
	}

	// The other endpoint is not skipped.
	began := time.Now()
	want := map[string][]string{}
	acks := map[string]job.Ack{}
	for range 3 {
		id, w, ack := b.run(t, good.URL+"/hook", "x")
		want[id], acks[id] = w, ack
	}
	waitAccepted(t, good, 3*3)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("the healthy endpoint's events took %v", took)
	}
	for id, w := range want {
		if got := labels(of(good.accepted(), id)); !slices.Equal(got, w) {
			t.Fatalf("job %s: events %q, want %q", id, got, w)
		}
		b.waitAck(t, id, acks[id])
	}
	if n := len(bad.all()); n != sent {
		t.Fatalf("the failing endpoint got %d more requests while skipped", n-sent)
	}
}

// TestDeliverRewrites: the first rule whose From prefixes the hook URL
// replaces that prefix at delivery; the stored URL stays.
func TestDeliverRewrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, always(http.StatusOK))
	// Nothing listens on port 1: an URL not rewritten is never accepted.
	const old = "http://127.0.0.1:1"
	b.deliverer(t, Options{BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Rewrites: []Rewrite{
		{From: old + "/other/", To: old + "/wrong/"},
		{From: old + "/old/", To: rc.URL + "/new/"},
		{From: old + "/", To: old + "/wrong/"},
	}})
	moved, want, ack := b.run(t, old+"/old/hook?x=1")
	b.waitAck(t, moved, ack)
	plain, wantPlain, ackPlain := b.run(t, rc.URL+"/plain")
	b.waitAck(t, plain, ackPlain)

	got := of(rc.accepted(), moved)
	if !slices.Equal(labels(got), want) {
		t.Fatalf("events %q, want %q:%s", labels(got), want, describe(rc.all()))
	}
	for _, c := range got {
		if c.Path != "/new/hook" || c.Query != "x=1" || c.Change.Metadata.WebHookURL != old+"/old/hook?x=1" {
			t.Fatalf("rewritten request %s?%s with stored URL %q, want /new/hook?x=1 and the stored URL unchanged",
				c.Path, c.Query, c.Change.Metadata.WebHookURL)
		}
	}
	if got := of(rc.accepted(), plain); !slices.Equal(labels(got), wantPlain) || got[0].Path != "/plain" {
		t.Fatalf("a URL no rule matches: %s", describe(got))
	}
}

// claimCounter counts the hook claims (ClaimHook) made through a pool.
type claimCounter struct {
	redis.ConnWithContext
	due string
	n   *atomic.Int64
}

func (c claimCounter) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	v, err := c.ConnWithContext.DoContext(ctx, cmd, args...)
	// EVALSHA sha 2 due attempts now lease prefix prefix.
	if err == nil && (cmd == "EVALSHA" || cmd == "EVAL") && len(args) == 8 && args[2] == c.due {
		c.n.Add(1)
	}
	return v, err
}

// countingStore is a store on the bundle's namespace whose hook claims
// are counted in n.
func (b *bundle) countingStore(t *testing.T, n *atomic.Int64) *store.Store {
	t.Helper()
	due := b.store.Keys().HooksDue()
	pool := &redis.Pool{MaxIdle: 8, DialContext: func(ctx context.Context) (redis.Conn, error) {
		c, err := redis.DialContext(ctx, "tcp", b.srv.Addr(), redis.DialConnectTimeout(5*time.Second))
		if err != nil {
			return nil, err
		}
		return claimCounter{ConnWithContext: c.(redis.ConnWithContext), due: due, n: n}, nil
	}}
	t.Cleanup(func() { _ = pool.Close() })
	return store.New(pool, store.Options{Namespace: b.ns})
}

// TestDeliverWakes: idle workers do not poll (MaxIdleWait is an hour
// here); a new event waits until Observe or OnEvent wakes one of them.
func TestDeliverWakes(t *testing.T) {
	t.Parallel()
	const workers = 3
	// idle starts a deliverer on an empty namespace and waits until
	// every worker has found nothing to claim and sleeps.
	idle := func(t *testing.T) (*bundle, *receiver, *Deliverer, *atomic.Int64) {
		t.Helper()
		b := setup(t)
		rc := newReceiver(t, always(http.StatusOK))
		claims := new(atomic.Int64)
		d := b.deliverer(t, Options{Store: b.countingStore(t, claims), Workers: workers, MaxIdleWait: time.Hour})
		b.observe = nil // the test tells the deliverer itself
		if !eventually(func() bool { return claims.Load() >= workers }) {
			t.Fatalf("%d claims, want one per worker (%d)", claims.Load(), workers)
		}
		return b, rc, d, claims
	}

	t.Run("Observe", func(t *testing.T) {
		t.Parallel()
		b, rc, d, claims := idle(t)
		id := b.newJob(t, rc.URL)
		r := b.start(t, id)
		if len(r.Events) != 1 || !r.Events[0].Announced {
			t.Fatalf("Start made events %+v, want one that queued a hook event", r.Events)
		}
		// A change that queued nothing wakes no one, and nothing else
		// does: the only wait on a clock in these tests, proving that
		// something does not happen.
		d.Observe(job.Event{JobID: id, From: job.Running, To: job.Running, Reason: job.CheckedIn})
		time.Sleep(200 * time.Millisecond)
		if calls, n := rc.all(), claims.Load(); len(calls) != 0 || n != workers {
			t.Fatalf("without a kick: %d claims (want %d, one per worker), requests:%s", n, workers, describe(calls))
		}
		d.Observe(r.Events[0])
		waitAccepted(t, rc, 1)
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: r.Stats.Revision})
	})

	t.Run("OnEvent", func(t *testing.T) {
		t.Parallel()
		b, rc, d, _ := idle(t)
		id := b.newJob(t, rc.URL)
		r := b.start(t, id)
		d.OnEvent(id)
		waitAccepted(t, rc, 1)
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: r.Stats.Revision})
	})
}

// hang answers the first request only when its sender gives up (or the
// test ends), the others 200.
func hang(n int, _ call, _ http.ResponseWriter, r *http.Request, done <-chan struct{}) int {
	if n == 0 {
		select {
		case <-r.Context().Done():
		case <-done:
		}
		return http.StatusOK
	}
	return http.StatusOK
}

// TestDeliverTimeout: a receiver that does not answer within Timeout is
// abandoned and the event sent again.
func TestDeliverTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name   string
		client func() *http.Client
	}{
		{"DefaultClient", func() *http.Client { return nil }},
		// A client without a timeout of its own: the deliverer's bounds
		// the request.
		{"OwnClient", func() *http.Client { return &http.Client{Transport: &http.Transport{}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rc := newReceiver(t, hang)
			id := b.newJob(t, rc.URL)
			r := b.start(t, id)
			// A short MaxIdleWait: see TestDeliverRetryNeedsNoPoll.
			b.deliverer(t, Options{Timeout: timeout, Client: tc.client(), BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
				MaxIdleWait: 50 * time.Millisecond})
			waitAccepted(t, rc, 1)
			b.waitAck(t, id, job.Ack{Status: job.Running, Revision: r.Stats.Revision})
			all := rc.all()
			if len(all) != 2 || !all[0].Gone || all[1].label() != "Running" {
				t.Fatalf("want the hanging request abandoned and the event sent again:%s", describe(all))
			}
			if gap := all[1].At.Sub(all[0].At); gap < timeout-10*time.Millisecond || gap > 2*time.Second {
				t.Fatalf("the event was sent again %v after the hanging request, want about the timeout %v", gap, timeout)
			}
		})
	}
}

// TestDeliverStop: Stop is safe before Start and twice; it abandons a
// delivery in flight and makes its event due at once, for the next
// deliverer.
func TestDeliverStop(t *testing.T) {
	t.Parallel()

	t.Run("Twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := New(Options{Store: b.store})
		d.Stop()
		d.Stop()
		d = New(Options{Store: b.store})
		d.Start(context.Background())
		d.Stop()
		d.Stop()
	})

	t.Run("InFlightIsDueAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, hang)
		id := b.newJob(t, rc.URL)
		r := b.start(t, id)
		// A minute to answer: only Stop ends the request, and the
		// job's lease is minutes.
		d := b.deliverer(t, Options{Timeout: time.Minute})
		if !eventually(func() bool { return len(rc.all()) == 1 }) {
			t.Fatalf("no delivery began: %s", describe(rc.all()))
		}
		stopped := make(chan struct{})
		go func() { d.Stop(); d.Stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(within):
			t.Fatalf("Stop did not return within %v with a delivery in flight", within)
		}
		if !eventually(func() bool { return rc.all()[0].Code != 0 }) || !rc.all()[0].Gone {
			t.Fatalf("the request in flight was not abandoned: %s", describe(rc.all()))
		}
		at, due := b.due(t, id)
		if !due || at.After(time.Now()) || b.queued(t, id) != 1 {
			t.Fatalf("after Stop the event is due %v (%v), %d queued; want 1 due now", at, due, b.queued(t, id))
		}

		b.deliverer(t, Options{})
		waitAccepted(t, rc, 1)
		b.waitAck(t, id, job.Ack{Status: job.Running, Revision: r.Stats.Revision})
		if all := rc.all(); len(all) != 2 {
			t.Fatalf("want the abandoned request and one delivery: %s", describe(all))
		}
	})
}

// TestDeliverManyJobs: the workers deliver different jobs at once, and
// each job's events one at a time, in order; a worker that takes an event
// wakes another, so one kick puts a backlog on every worker.
func TestDeliverManyJobs(t *testing.T) {
	t.Parallel()
	t.Run("QueuedBeforeStart", func(t *testing.T) {
		t.Parallel()
		manyJobs(t, false)
	})
	t.Run("OneKick", func(t *testing.T) {
		t.Parallel()
		manyJobs(t, true)
	})
}

// manyJobs queues 50 runs of 3 events for 8 workers, before they start or
// (kick) while they sleep, followed by a single kick.
func manyJobs(t *testing.T, kick bool) {
	const (
		workers = 8
		jobs    = 50
	)
	b := setup(t)
	var (
		mu       sync.Mutex
		inFlight int
		most     int
		perJob   = map[string]int{}
		overlap  []string
		together = make(chan struct{}) // closed when every worker has a request in flight (or not in time)
		once     sync.Once
	)
	rc := newReceiver(t, func(_ int, c call, _ http.ResponseWriter, _ *http.Request, done <-chan struct{}) int {
		id := c.Change.JobID
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if perJob[id]++; perJob[id] > 1 {
			overlap = append(overlap, id)
		}
		if inFlight >= workers {
			once.Do(func() { close(together) })
		}
		mu.Unlock()
		// The first requests wait for each other, a while at most.
		select {
		case <-together:
		case <-done:
		case <-time.After(within / 2):
		}
		once.Do(func() { close(together) })
		mu.Lock()
		inFlight--
		perJob[id]--
		mu.Unlock()
		return http.StatusOK
	})
	var d *Deliverer
	if kick {
		claims := new(atomic.Int64)
		d = b.deliverer(t, Options{Store: b.countingStore(t, claims), Workers: workers, MaxIdleWait: time.Hour})
		b.observe = nil
		if !eventually(func() bool { return claims.Load() >= workers }) {
			t.Fatalf("%d claims, want one per worker (%d)", claims.Load(), workers)
		}
	}
	want := map[string][]string{}
	acks := map[string]job.Ack{}
	var last job.Event
	for range jobs {
		id := b.newJob(t, rc.URL+"/hook")
		r := b.start(t, id)
		rev := r.Stats.Revision
		at := b.checkin(t, id, rev, "half")
		b.succeed(t, id, rev)
		want[id] = []string{"Running", "Running: half", "Success"}
		acks[id] = job.Ack{Status: job.Success, Revision: rev, CheckInAt: at}
		last = r.Events[0]
	}
	if kick {
		d.Observe(last)
	} else {
		b.deliverer(t, Options{Workers: workers})
	}

	waitAccepted(t, rc, 3*jobs)
	for id, w := range want {
		if got := labels(of(rc.accepted(), id)); !slices.Equal(got, w) {
			t.Fatalf("job %s: events %q, want %q", id, got, w)
		}
		b.waitAck(t, id, acks[id])
	}
	mu.Lock()
	defer mu.Unlock()
	if most < workers || len(overlap) > 0 {
		t.Fatalf("at most %d requests at once, want %d (one per worker); jobs with two requests at once: %q", most, workers, overlap)
	}
	if n := len(rc.all()); n != 3*jobs {
		t.Fatalf("%d requests for %d events", n, 3*jobs)
	}
}
