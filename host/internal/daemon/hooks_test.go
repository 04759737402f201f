package daemon_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// receiver is a status hook endpoint that records what it accepts.
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32 // answer; 200 when 0

	mu     sync.Mutex
	events []job.StatusChange
	calls  int
	got    chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls++
		r.mu.Unlock()
		if s := r.status.Load(); s != 0 && s != http.StatusOK {
			http.Error(w, "not now", int(s))
			return
		}
		var ev job.StatusChange
		if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

// callCount is how many calls the receiver got, accepted or not.
func (r *receiver) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// eventsOf returns what was accepted for one job, as "status" or
// "status:check-in".
func (r *receiver) eventsOf(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.JobID != id {
			continue
		}
		s := string(e.Status)
		if e.CheckIn != "" {
			s += ":" + e.CheckIn
		}
		out = append(out, s)
	}
	return out
}

// waitFor waits until the job's accepted events end with last.
func (r *receiver) waitFor(t *testing.T, id, last string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.eventsOf(id)
		if len(got) > 0 && got[len(got)-1] == last {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: hook events %q, want them to end with %q within %s", id, got, last, timeout)
		}
		select {
		case <-r.got:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func withHook(name string, params map[string]any, hook string, meta map[string]any) map[string]any {
	req := hosttest.Request(name, params, meta)
	req["job"].(map[string]any)["status_hook"] = hook
	return req
}

func submitWithHook(t *testing.T, h *hosttest.Host, name string, params map[string]any, hook string) *job.Stats {
	t.Helper()
	r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, withHook(name, params, hook, nil))
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	return r.Stats(t)
}

var demoEvents = []string{"Running", "Running:progress data: %30", "Running:progress data: %60", "Success"}

func TestHookEventsArriveInOrderWithFullStats(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t)
	h := hosttest.NewCluster(t).Start(t, nil)
	st := submitWithHook(t, h, "DEMO", demo(map[string]any{"hold_seconds": 0}), recv.url("/service/notifications/tasks/1"))
	got := recv.waitFor(t, st.ID, "Success", wait)
	if strings.Join(got, "|") != strings.Join(demoEvents, "|") {
		t.Fatalf("events %q, want %q", got, demoEvents)
	}
	recv.mu.Lock()
	var last job.StatusChange
	var checkInAts []int64
	for _, e := range recv.events {
		if e.JobID == st.ID {
			last = e
			if e.CheckIn != "" {
				checkInAts = append(checkInAts, e.Metadata.CheckInAt)
			}
		}
	}
	recv.mu.Unlock()
	m := last.Metadata
	if m == nil || m.ID != st.ID || m.Status != job.Success || m.Name != "DEMO" || m.WebHookURL != st.WebHookURL || m.Revision != st.Revision || m.Parameters["image"] != "demo" {
		t.Fatalf("metadata of the last event: %+v", m)
	}
	// check_in_at is the second of each check-in: never ahead of the clock,
	// never back.
	if now := time.Now().Unix(); len(checkInAts) != 2 || checkInAts[1] < checkInAts[0] || checkInAts[1] > now {
		t.Fatalf("check_in_at of the check-in events %v (now %d): want not decreasing, not ahead of the clock", checkInAts, now)
	}
	// The ack is recorded once the receiver's 200 is back.
	final := h.Wait(t, st.ID, wait, "the ack of Success", func(s *job.Stats) bool { return s.Ack != nil && s.Ack.Status == job.Success })
	if final.Ack.Revision != st.Revision || final.Ack.CheckInAt != checkInAts[1] {
		t.Fatalf("ack after delivery: %+v", final.Ack)
	}
}

func TestHookReceiverThatFailsForAWhileGetsEveryEventInOrder(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t)
	recv.status.Store(http.StatusInternalServerError)
	h := hosttest.NewCluster(t).Start(t, func(c *config.Config) {
		c.Hooks.BackoffBase = config.Duration(100 * time.Millisecond)
		c.Hooks.BackoffMax = config.Duration(400 * time.Millisecond)
	})
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, submitWithHook(t, h, "DEMO", demo(map[string]any{"hold_seconds": 0}), recv.url("/hook")).ID)
	}
	for _, id := range ids {
		h.WaitStatus(t, id, job.Success, wait)
	}
	// Failed deliveries meanwhile.
	pollUntil(t, wait, "3 calls of the failing receiver", func() bool { return recv.callCount() >= 3 })
	if acked := h.Get(t, ids[0]).Ack; acked != nil {
		t.Fatalf("ack %+v recorded while the receiver answered 500", acked)
	}
	recv.status.Store(http.StatusOK)
	for _, id := range ids {
		got := recv.waitFor(t, id, "Success", wait)
		if strings.Join(got, "|") != strings.Join(demoEvents, "|") {
			t.Fatalf("job %s: events %q, want %q", id, got, demoEvents)
		}
	}
}

// TestOnlyStatus200CountsAsDelivered: a receiver answering 204 has not
// accepted the event; it stays queued and no ack is recorded.
func TestOnlyStatus200CountsAsDelivered(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t)
	recv.status.Store(http.StatusNoContent)
	h := hosttest.NewCluster(t).Start(t, func(c *config.Config) {
		c.Hooks.BackoffBase = config.Duration(100 * time.Millisecond)
		c.Hooks.BackoffMax = config.Duration(200 * time.Millisecond)
	})
	st := submitWithHook(t, h, "NOOP", nil, recv.url("/hook"))
	h.WaitStatus(t, st.ID, job.Success, wait)
	deadline := time.Now().Add(wait)
	for {
		recv.mu.Lock()
		calls := recv.calls
		recv.mu.Unlock()
		if calls >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver was called %d times", calls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ack := h.Get(t, st.ID).Ack; ack != nil {
		t.Fatalf("ack %+v after 204 answers", ack)
	}
	recv.status.Store(http.StatusOK)
	recv.waitFor(t, st.ID, "Success", wait)
}

func TestHookEventsSurviveAHostRestartWhileTheReceiverIsDown(t *testing.T) {
	t.Parallel()
	// Reserve an address, and keep nothing listening there for now.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := hosttest.NewCluster(t)
	a := c.Start(t, func(c *config.Config) {
		c.Hooks.BackoffBase = config.Duration(100 * time.Millisecond)
		c.Hooks.BackoffMax = config.Duration(300 * time.Millisecond)
	})
	st := submitWithHook(t, a, "DEMO", demo(map[string]any{"hold_seconds": 0}), "http://"+addr+"/hook")
	a.WaitStatus(t, st.ID, job.Success, wait)
	a.Stop()

	recv := newReceiver(t)
	recv.srv.Close()
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	recv.srv = httptest.NewUnstartedServer(recv.srv.Config.Handler)
	recv.srv.Listener = l2
	recv.srv.Start()
	b := c.Start(t, func(c *config.Config) {
		c.Hooks.BackoffBase = config.Duration(100 * time.Millisecond)
		c.Hooks.BackoffMax = config.Duration(300 * time.Millisecond)
	})
	got := recv.waitFor(t, st.ID, "Success", wait)
	if strings.Join(got, "|") != strings.Join(demoEvents, "|") {
		t.Fatalf("events after the restart %q, want %q", got, demoEvents)
	}
	b.Wait(t, st.ID, wait, "the ack of Success", func(s *job.Stats) bool { return s.Ack != nil && s.Ack.Status == job.Success })
}

func TestHookURLRewrite(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t)
	h := hosttest.NewCluster(t).Start(t, func(c *config.Config) {
		c.Hooks.Rewrites = []config.Rewrite{{From: "http://old-core:8080", To: recv.url("")}}
	})
	st := submitWithHook(t, h, "DEMO", demo(map[string]any{"hold_seconds": 0}), "http://old-core:8080/service/notifications/tasks/7")
	recv.waitFor(t, st.ID, "Success", wait)
	if got := h.Get(t, st.ID); got.WebHookURL != "http://old-core:8080/service/notifications/tasks/7" {
		t.Fatalf("the stored hook URL changed: %q", got.WebHookURL)
	}
}

// TestThousandJobsWithADeadHookStayBounded runs 1,000 jobs whose hook
// endpoint refuses connections and checks the host's goroutines and heap.
func TestThousandJobsWithADeadHookStayBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/hook"
	l.Close()
	cluster := hosttest.NewCluster(t)
	h := cluster.Start(t, func(c *config.Config) {
		c.WorkerPool.Workers = 10
		c.Hooks.BackoffBase = config.Duration(50 * time.Millisecond)
		c.Hooks.BackoffMax = config.Duration(time.Second)
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	const n = 1000
	body := func(i int) map[string]any { return withHook("NOOP", map[string]any{"i": i}, dead, nil) }
	var ids []string
	for i := 0; i < n; i++ {
		r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, body(i))
		if r.Status != http.StatusAccepted {
			t.Fatalf("submit %d: %d %s", i, r.Status, r.Body)
		}
		ids = append(ids, r.Stats(t).ID)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for h.Get(t, id).Status != job.Success {
			if time.Now().After(deadline) {
				t.Fatalf("job %s not done within 60s", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The jobs are done; the host keeps retrying their events: measure
	// once it has taken up every job's event again since then (a worker
	// claiming an event, and rescheduling it after a failed or skipped
	// delivery, moves its due time).
	conn := cluster.Redis.Pool(t).Get()
	defer conn.Close()
	dueKey := "{" + cluster.Namespace + "}:berth:hooks:due"
	dueTimes := func() map[string]int64 {
		raw, err := redis.Strings(conn.Do("ZRANGE", dueKey, 0, -1, "WITHSCORES"))
		if err != nil {
			t.Fatalf("ZRANGE %s: %v", dueKey, err)
		}
		out := make(map[string]int64, len(raw)/2)
		for i := 0; i+1 < len(raw); i += 2 {
			out[raw[i]], _ = strconv.ParseInt(raw[i+1], 10, 64)
		}
		return out
	}
	done, atDone := time.Now(), dueTimes()
	pollUntil(t, wait, "new delivery attempt of every job's hook event", func() bool {
		now := dueTimes()
		for _, id := range ids {
			if at, ok := now[id]; !ok || at == atDone[id] {
				return false
			}
		}
		return true
	})
	t.Logf("every job's hook event was taken up again within %v", time.Since(done).Round(time.Millisecond))
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	goroutines := runtime.NumGoroutine()
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("goroutines %d -> %d, heap %d KiB -> %d KiB (growth %d KiB)", goroutinesBefore, goroutines, before.HeapAlloc>>10, after.HeapAlloc>>10, growth>>10)
	if goroutines > goroutinesBefore+50 {
		t.Errorf("goroutines grew from %d to %d with 1,000 undeliverable hooks", goroutinesBefore, goroutines)
	}
	if growth > 32<<20 {
		t.Errorf("heap grew by %d MiB with 1,000 undeliverable hooks", growth>>20)
	}
	// Every job's events still wait in Redis: nothing was dropped.
	waiting, err := redis.Int(conn.Do("ZCARD", dueKey))
	if err != nil || waiting != n {
		t.Fatalf("%d jobs have hook events waiting (%v), want %d", waiting, err, n)
	}
	if got := h.Get(t, ids[0]); got.Ack != nil {
		t.Fatalf("ack %+v for an undeliverable event", got.Ack)
	}
}
