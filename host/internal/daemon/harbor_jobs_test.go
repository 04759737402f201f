package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// The tests of this file run the plugins of Harbor's HTTP-only job types
// (plugins/scheduler, plugins/webhook, plugins/slack) through a real
// host, against loopback receivers that stand in for Harbor's core, a
// webhook receiver and Slack.

// harborJobsHost starts a host, on a namespace of its own, whose plugins
// directory holds the named plugins.
func harborJobsHost(t *testing.T, mutate func(*config.Config), plugins ...string) *hosttest.Host {
	t.Helper()
	return hosttest.NewCluster(t, plugins...).Start(t, mutate)
}

// allowLoopback lets the named plugins call this test's loopback
// receivers, with extra settings.
func allowLoopback(extra map[string]map[string]any, plugins ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.PluginConfig = map[string]map[string]any{}
		for _, p := range plugins {
			section := map[string]any{"allowed_networks": []any{"127.0.0.0/8"}}
			for k, v := range extra[p] {
				section[k] = v
			}
			c.PluginConfig[p] = section
		}
	}
}

// httpCall is a request a stand-in got.
type httpCall struct {
	at           time.Time
	method, path string
	header       http.Header
	body         string
}

// standIn is a loopback HTTP server that records what it gets and
// answers with answer (given the number of the call to its path, from 1).
type standIn struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, n int)

	mu    sync.Mutex
	calls []httpCall
}

func newStandIn(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *standIn {
	s := &standIn{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.calls = append(s.calls, httpCall{time.Now(), r.Method, r.URL.Path, r.Header.Clone(), string(body)})
		n := 0
		for _, c := range s.calls {
			if c.path == r.URL.Path {
				n++
			}
		}
		s.mu.Unlock()
		s.answer(w, r, n)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// callsTo returns the calls to path, in order.
func (s *standIn) callsTo(path string) []httpCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []httpCall
	for _, c := range s.calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

// eventsFor returns the hook events the receiver accepted for job id.
func (r *receiver) eventsFor(id string) []job.StatusChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []job.StatusChange
	for _, e := range r.events {
		if e.JobID == id {
			out = append(out, e)
		}
	}
	return out
}

// Harbor's core schedules its jobs (replication, GC, scan all...) with a
// periodic SCHEDULER job: every fire must check in, through the status
// hook, what core's hook handler decodes to run the schedule's callback.
func TestHarborJobsSchedulerChecksInItsParametersAtEveryFire(t *testing.T) {
	t.Parallel()
	core := newReceiver(t)
	h := harborJobsHost(t, nil, "scheduler")
	sub := h.Subscribe(t)
	// What Harbor 2.0's core submits: the callback's name and its
	// parameters, encoded.
	params := map[string]any{"callback_func": "REPLICATION_CALLBACK", "params": `{"policy_id":7}`}
	r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth,
		withHook("SCHEDULER", params, core.url("/service/notifications/schedules/7"), map[string]any{"kind": "Periodic", "cron_spec": "*/1 * * * * *"}))
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	policy := r.Stats(t)

	// Each fire's execution checks in once: the parameters with Harbor's
	// periodic mark, the fire time, byte for byte as Harbor's would.
	fired := map[string]string{}
	for len(fired) < 2 {
		ev := hosttest.WaitEvent(t, sub, wait, "a check-in of an execution", func(e job.Event) bool {
			return e.Reason == job.CheckedIn && strings.HasPrefix(e.JobID, policy.ID+"@")
		})
		fire := strings.TrimPrefix(ev.JobID, policy.ID+"@")
		want := fmt.Sprintf(`{"_job_kind_periodic_":"%s","callback_func":"REPLICATION_CALLBACK","params":"{\"policy_id\":7}"}`, fire)
		if ev.CheckIn != want {
			t.Fatalf("execution %s checked in %q, want %q", ev.JobID, ev.CheckIn, want)
		}
		if _, dup := fired[ev.JobID]; dup {
			t.Fatalf("execution %s checked in twice", ev.JobID)
		}
		fired[ev.JobID] = ev.CheckIn
	}

	// Core's hook handler gets each check-in and decodes the callback
	// from it, as Harbor 2.0's did; each execution then succeeds.
	for id, checkIn := range fired {
		if st := h.WaitStatus(t, id, job.Success, wait); st.CheckIn != checkIn || st.UpstreamJobID != policy.ID {
			t.Fatalf("execution %s ended with %+v", id, st)
		}
		core.waitFor(t, id, "Success", wait)
		var got []string
		for _, e := range core.eventsFor(id) {
			if e.CheckIn == "" {
				continue
			}
			got = append(got, e.CheckIn)
			var decoded map[string]any
			if err := json.Unmarshal([]byte(e.CheckIn), &decoded); err != nil {
				t.Fatalf("core cannot decode the check-in %q: %v", e.CheckIn, err)
			}
			if decoded["callback_func"] != "REPLICATION_CALLBACK" || decoded["params"] != `{"policy_id":7}` {
				t.Fatalf("core decodes %v from the check-in", decoded)
			}
		}
		if len(got) != 1 || got[0] != checkIn {
			t.Fatalf("core got the check-ins %q of execution %s, want [%q]", got, id, checkIn)
		}
	}
	if r := h.Action(t, policy.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop the policy: %d %s", r.Status, r.Body)
	}
}

// The WEBHOOK job as Harbor's core submits it: the event to an address,
// with the header its formatter made; retried on a server error until its
// MaxFails, then Error with the status and the start of the body.
func TestHarborJobsWebhookDeliversRetriesAndFails(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 512) + "TAIL"
	rc := newStandIn(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, long)
		}
	})
	h := harborJobsHost(t, allowLoopback(map[string]map[string]any{"webhook": {"max_fails": 2}}, "webhook"), "webhook")
	sub := h.Subscribe(t)
	header, err := json.Marshal(http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"type":"PUSH_ARTIFACT","occur_at":1700000000,"operator":"admin","event_data":{"repository":{"name":"busybox"}}}`

	ok := h.Submit(t, "WEBHOOK", map[string]any{"payload": payload, "address": rc.srv.URL + "/hook", "header": string(header), "skip_cert_verify": false}, nil)
	h.WaitStatus(t, ok.ID, job.Success, wait)
	calls := rc.callsTo("/hook")
	if len(calls) != 1 {
		t.Fatalf("the receiver got %d calls, want 1", len(calls))
	}
	if c := calls[0]; c.method != http.MethodPost || c.body != payload || c.header.Get("Authorization") != "Bearer s3cret" ||
		c.header.Get("Content-Type") != "application/json" {
		t.Fatalf("the receiver got %s %q with %v", c.method, c.body, c.header)
	}

	// plugin_config.webhook.max_fails is 2: one retry, then Error.
	bad := h.Submit(t, "WEBHOOK", map[string]any{"payload": payload, "address": rc.srv.URL + "/broken", "header": string(header)}, nil)
	ev := finalFailure(t, sub, bad.ID, 1)
	want := "POST " + rc.srv.URL + "/broken: answered 500 Internal Server Error: " + strings.Repeat("x", 512) + "…"
	if ev.Detail != want {
		t.Fatalf("final failure %q, want %q", ev.Detail, want)
	}
	if n := len(rc.callsTo("/broken")); n != 2 {
		t.Fatalf("the receiver got %d calls of the failing job, want 2 (max_fails)", n)
	}
	log := h.LogText(t, bad.ID)
	if strings.Count(log, "failed: POST "+rc.srv.URL+"/broken: answered 500") != 2 || strings.Count(log, "retrying in") != 1 || strings.Contains(log, "TAIL") ||
		strings.Contains(log, "s3cret") {
		t.Fatalf("log of the failing job:\n%s", log)
	}
	if st := h.Get(t, bad.ID); st.Status != job.Error {
		t.Fatalf("the failing job is %s", st.Status)
	}
}

// Without an allowed network, the WEBHOOK job calls nothing in a refused
// range: a literal address is a 400 at submission, a name that resolves
// to one fails for good when it is dialled.
func TestHarborJobsWebhookRefusesAddressesInRefusedRanges(t *testing.T) {
	t.Parallel()
	rc := newStandIn(t, func(http.ResponseWriter, *http.Request, int) {})
	h := harborJobsHost(t, nil, "webhook")
	sub := h.Subscribe(t)
	u, _ := url.Parse(rc.srv.URL)
	for _, tc := range []struct{ address, want string }{
		{rc.srv.URL + "/hook", `parameter "address" (` + rc.srv.URL + `/hook) is refused: 127.0.0.1 is in 127.0.0.0/8 (loopback), a range this service does not call`},
		{"http://169.254.169.254/latest/meta-data/", `169.254.169.254 is in 169.254.0.0/16 (link-local (cloud metadata))`},
		{"http://[::1]:" + u.Port() + "/hook", `::1 is in ::1/128 (loopback)`},
		{"ftp://files.example.com/x", `parameter "address" must be an http or https URL, got one with scheme "ftp"`},
		{"http//missing-colon", `parameter "address" must be an http or https URL, got one with no scheme`},
	} {
		r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("WEBHOOK", map[string]any{"payload": "{}", "address": tc.address}, nil))
		if body := errorOf(t, r, http.StatusBadRequest); !strings.Contains(body.Details, tc.want) {
			t.Errorf("submit to %s: %+v, want %q", tc.address, body, tc.want)
		}
	}

	address := "http://localhost:" + u.Port() + "/hook"
	st := h.Submit(t, "WEBHOOK", map[string]any{"payload": "{}", "address": address}, nil)
	ev := finalFailure(t, sub, st.ID, 0) // permanent: no retry
	if !strings.HasPrefix(ev.Detail, "POST "+address+" refused: ") || !strings.Contains(ev.Detail, "(loopback), a range this service does not call") {
		t.Fatalf("final failure %q", ev.Detail)
	}
	if n := len(rc.callsTo("/hook")); n != 0 {
		t.Fatalf("the receiver got %d calls", n)
	}
	// The operator learns which setting allows it (the plugin's stderr,
	// in the host's log).
	deadline := time.Now().Add(wait)
	for !strings.Contains(h.Log.String(), "plugin_config.webhook.allowed_networks") {
		if time.Now().After(deadline) {
			t.Fatalf("the host's log does not tell the operator how to allow it:\n%s", h.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The SLACK job against a stand-in for a Slack incoming webhook that
// rate-limits the first message: the job snoozes for the Retry-After
// Slack gives, fails no run, and the message arrives; a webhook Slack no
// longer knows fails at once.
func TestHarborJobsSlackSnoozesOnRateLimit(t *testing.T) {
	t.Parallel()
	slack := newStandIn(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Path == "/services/T0/B0/gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "no_service")
		case n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, "rate_limited")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	h := harborJobsHost(t, allowLoopback(nil, "slack"), "slack")
	sub := h.Subscribe(t)
	payload := `{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*Harbor webhook events*"}}]}`
	st := h.Submit(t, "SLACK", map[string]any{"payload": payload, "address": slack.srv.URL + "/services/T0/B0/s3cret", "skip_cert_verify": true}, nil)

	ev := hosttest.WaitEvent(t, sub, wait, "the snooze", func(e job.Event) bool {
		if e.JobID == st.ID && (e.Reason == job.Failed || e.Reason == job.RetryWait) {
			t.Fatalf("the rate-limited job failed a run: %+v", e)
		}
		return e.JobID == st.ID && e.Reason == job.Snoozed
	})
	if ev.To != job.Scheduled || !strings.Contains(ev.Detail, "answered 429 Too Many Requests: rate_limited") {
		t.Fatalf("snooze event %+v", ev)
	}
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	calls := slack.callsTo("/services/T0/B0/s3cret")
	if len(calls) != 2 {
		t.Fatalf("the stand-in got %d messages, want 2", len(calls))
	}
	if gap := calls[1].at.Sub(calls[0].at); gap < time.Second {
		t.Fatalf("the second message came %v after the 429 with Retry-After: 1", gap)
	}
	for _, c := range calls {
		if c.body != payload || c.header.Get("Content-Type") != "application/json" {
			t.Fatalf("Slack got %q with %v", c.body, c.header)
		}
	}
	log := h.LogText(t, st.ID)
	if !strings.Contains(log, "snoozing for 1s") || strings.Contains(log, "failed") || strings.Contains(log, "s3cret") {
		t.Fatalf("log:\n%s", log)
	}
	if done.Revision <= st.Revision {
		t.Fatalf("the run after the snooze has revision %d, the first %d", done.Revision, st.Revision)
	}

	gone := h.Submit(t, "SLACK", map[string]any{"payload": payload, "address": slack.srv.URL + "/services/T0/B0/gone"}, nil)
	fail := finalFailure(t, sub, gone.ID, 0)
	if fail.Detail != "POST "+slack.srv.URL+"/services/…: answered 404 Not Found: no_service" {
		t.Fatalf("final failure %q", fail.Detail)
	}
}
