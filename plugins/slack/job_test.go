package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/plugins/internal/notify"
	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// env is a fake environment.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// plugin is one plugin as its main makes it.
type plugin struct {
	job    sdk.Job
	config sdk.Option
	h      *notify.Holder

	mu    sync.Mutex
	warns []string
}

func newTestPlugin(e env) *plugin {
	p := &plugin{}
	p.h = &notify.Holder{Lookup: e.lookup, Warn: func(msg string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.warns = append(p.warns, msg)
	}}
	p.job, p.config = newPlugin(p.h)
	return p
}

func (p *plugin) options(settings map[string]any) []sdktest.Option {
	opts := []sdktest.Option{sdktest.WithPlugin(p.config)}
	if settings != nil {
		opts = append(opts, sdktest.WithConfig(settings))
	}
	return opts
}

func (p *plugin) run(t *testing.T, params map[string]any, settings map[string]any) sdktest.Result {
	t.Helper()
	return sdktest.Run(t, p.job, params, p.options(settings)...)
}

// settings lets the job call loopback stand-ins, with a pause of ms after
// each message.
func settings(ms int) map[string]any {
	return map[string]any{"allowed_networks": []string{"127.0.0.0/8"}, "min_interval_ms": ms}
}

// slackStandIn answers like a Slack incoming webhook: with status and
// body, and the headers given.
type slackStandIn struct {
	srv *httptest.Server

	mu     sync.Mutex
	bodies []string
	types  []string
	status int
	body   string
	header map[string]string
}

func newSlack(t *testing.T, status int, body string, header map[string]string) *slackStandIn {
	s := &slackStandIn{status: status, body: body, header: header}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.types = append(s.types, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		s.mu.Unlock()
		for k, v := range s.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *slackStandIn) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// hook is the stand-in's address, shaped like a Slack webhook's.
func (s *slackStandIn) hook() string { return s.srv.URL + "/services/T000/B000/s3cretT0ken" }

// payload is a message as Harbor's core makes one.
const payload = `{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*Harbor webhook events*"}}]}`

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		params  map[string]any
		wantErr string
	}{
		{"Minimal", map[string]any{"payload": payload, "address": "https://hooks.slack.com/services/T/B/x"}, ""},
		{"NotStrictJSON", map[string]any{"payload": "{\"text\": \"```{\n\t\\\"a\\\"\n}```\"}", "address": "https://hooks.slack.com/services/T/B/x", "skip_cert_verify": true}, ""},
		{"NoPayload", map[string]any{"address": "https://hooks.slack.com/services/T/B/x"}, `parameter "payload" is required`},
		{"NoAddress", map[string]any{"payload": payload}, `parameter "address" is required`},
		{"AddressNotString", map[string]any{"payload": payload, "address": 3}, `parameter "address" must be a string, got 3`},
		{"Header", map[string]any{"payload": payload, "address": "https://hooks.slack.com/", "header": "{}"}, `unknown parameter "header"`},
		{"Scheme", map[string]any{"payload": payload, "address": "hooks.slack.com/services/T/B/x"}, `must be an http or https URL, got one with no scheme`},
		{"Private", map[string]any{"payload": payload, "address": "http://192.168.0.10/services/T/B/s3cret"}, `parameter "address" (http://192.168.0.10/services/…) is refused: 192.168.0.10 is in 192.168.0.0/16 (private)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPlugin(env{})
			err := sdktest.Validate(t, p.job, tc.params, p.options(nil)...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("Validate shows the hook's secret: %v", err)
			}
		})
	}
}

func TestPostsTheMessageAsJSONThenPauses(t *testing.T) {
	t.Parallel()
	slack := newSlack(t, http.StatusOK, "ok", nil)
	p := newTestPlugin(env{})
	for _, tc := range []struct {
		settings map[string]any
		pause    time.Duration
	}{
		{map[string]any{"allowed_networks": []string{"127.0.0.0/8"}}, time.Second}, // Harbor's second
		{settings(300), 300 * time.Millisecond},
	} {
		start := time.Now()
		res := p.run(t, map[string]any{"payload": payload, "address": slack.hook()}, tc.settings)
		if took := time.Since(start); res.Kind != sdktest.Succeeded || took < tc.pause {
			t.Fatalf("run = %s %v after %v, want success after at least %v", res.Kind, res.Err, took, tc.pause)
		}
	}
	slack.mu.Lock()
	defer slack.mu.Unlock()
	for i, b := range slack.bodies {
		if b != payload || slack.types[i] != "POST /services/T000/B000/s3cretT0ken application/json" {
			t.Errorf("message %d: %s %q", i, slack.types[i], b)
		}
	}
}

func TestARateLimitSnoozesForRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"Seconds", "7", 7 * time.Second},
		{"None", "", 30 * time.Second},
		{"Zero", "0", time.Second},
		{"Date", time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat), 2 * time.Minute},
		{"Huge", "86400", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header := map[string]string{}
			if tc.retryAfter != "" {
				header["Retry-After"] = tc.retryAfter
			}
			slack := newSlack(t, http.StatusTooManyRequests, "rate_limited", header)
			start := time.Now()
			// A long pause: a snooze must not wait for it.
			res := newTestPlugin(env{}).run(t, map[string]any{"payload": payload, "address": slack.hook()}, settings(20000))
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("a rate-limited run took %v: it paused", took)
			}
			if res.Kind != sdktest.Snoozed {
				t.Fatalf("run = %s %v", res.Kind, res.Err)
			}
			if d := res.SnoozeFor - tc.want; d < -2*time.Second || d > 2*time.Second {
				t.Fatalf("snoozed for %v, want %v", res.SnoozeFor, tc.want)
			}
			if !strings.Contains(res.Err.Error(), "answered 429 Too Many Requests: rate_limited (rate limited; trying again in") {
				t.Fatalf("snooze reason %v", res.Err)
			}
		})
	}
}

func TestSlackErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		kind   sdktest.Kind
	}{
		{http.StatusBadRequest, "invalid_payload", sdktest.FailedPermanently},
		{http.StatusForbidden, "invalid_token", sdktest.FailedPermanently},
		{http.StatusNotFound, "channel_not_found", sdktest.FailedPermanently},
		{http.StatusGone, "channel_is_archived", sdktest.FailedPermanently},
		{http.StatusInternalServerError, "rollup_error", sdktest.Failed},
		{http.StatusServiceUnavailable, "", sdktest.Failed},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			slack := newSlack(t, tc.status, tc.body, nil)
			res := newTestPlugin(env{}).run(t, map[string]any{"payload": payload, "address": slack.hook()}, settings(0))
			want := fmt.Sprintf("POST %s/services/…: answered %d %s", slack.srv.URL, tc.status, http.StatusText(tc.status))
			if res.Kind != tc.kind || !strings.Contains(res.Err.Error(), want) || !strings.Contains(res.Err.Error(), tc.body) {
				t.Fatalf("run = %s %v, want %s with %q and %q", res.Kind, res.Err, tc.kind, want, tc.body)
			}
			if strings.Contains(res.Err.Error(), "s3cret") {
				t.Fatalf("the error shows the hook's secret: %v", res.Err)
			}
		})
	}
}

func TestTheGuardRefusesLoopbackUnlessAllowed(t *testing.T) {
	t.Parallel()
	slack := newSlack(t, http.StatusOK, "ok", nil)
	u, _ := url.Parse(slack.srv.URL)
	address := "http://localhost:" + u.Port() + "/services/T000/B000/s3cretT0ken"
	p := newTestPlugin(env{})
	res := p.run(t, map[string]any{"payload": payload, "address": address}, nil)
	if res.Kind != sdktest.FailedPermanently || !strings.Contains(res.Err.Error(), "POST http://localhost:"+u.Port()+"/services/… refused: ") ||
		!strings.Contains(res.Err.Error(), "(loopback)") {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	p.mu.Lock()
	warned := strings.Join(p.warns, "\n")
	p.mu.Unlock()
	if !strings.Contains(warned, "plugin_config.slack.allowed_networks") {
		t.Errorf("the operator was told %q", warned)
	}
	if slack.calls() != 0 {
		t.Fatalf("the stand-in got %d calls", slack.calls())
	}
	if res := p.run(t, map[string]any{"payload": payload, "address": address}, settings(0)); res.Kind != sdktest.Succeeded {
		t.Fatalf("allowed: %s %v", res.Kind, res.Err)
	}
}

func TestDeclaresHarborsRetriesAndOneAtATime(t *testing.T) {
	t.Parallel()
	for e, want := range map[string]uint{"": 3, "5": 5} {
		lookup := env{}
		if e != "" {
			lookup["JOBSERVICE_WEBHOOK_JOB_MAX_RETRY"] = e
		}
		j := Job{s: &state{h: &notify.Holder{Lookup: lookup.lookup}}}
		if j.MaxFails() != want || !j.ShouldRetry() || j.MaxConcurrency() != 1 {
			t.Errorf("env %q: MaxFails %d ShouldRetry %v MaxConcurrency %d", e, j.MaxFails(), j.ShouldRetry(), j.MaxConcurrency())
		}
	}
	p := newTestPlugin(env{})
	bad := -1
	if err := (&state{h: p.h}).configure(Settings{MinIntervalMS: &bad}); err == nil || err.Error() != `setting "min_interval_ms" must be from 0 to 60000, got -1` {
		t.Errorf("configure = %v", err)
	}
}
