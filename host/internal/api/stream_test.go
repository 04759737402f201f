package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/api"
	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
)

// streamWait bounds every wait of these tests.
const streamWait = 5 * time.Second

// frame is one server-sent event, or a comment (event "" and the
// comment's text in comment).
type frame struct {
	event, data, comment string
}

// sseClient reads a stream's frames on a goroutine of its own.
type sseClient struct {
	resp   *http.Response
	frames chan frame
	done   chan error // the read's end: io.EOF or the error
}

// openStream opens GET /api/v1/events with auth and expects 200.
func openStream(t *testing.T, url, auth string) *sseClient {
	t.Helper()
	resp := streamRequest(t, url, auth)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /api/v1/events = %d %s; want 200", resp.StatusCode, body)
	}
	c := &sseClient{resp: resp, frames: make(chan frame, 1<<14), done: make(chan error, 1)}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func streamRequest(t *testing.T, url, auth string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	return resp
}

func (c *sseClient) close() { c.resp.Body.Close() }

func (c *sseClient) read() {
	r := bufio.NewReader(c.resp.Body)
	var f frame
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.done <- err
			close(c.frames)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f != (frame{}) {
				c.frames <- f
			}
			f = frame{}
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			f.event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			f.data = line[len("data: "):]
		}
	}
}

// next waits for a frame that match accepts, skipping the others.
func (c *sseClient) next(t *testing.T, what string, match func(frame) bool) frame {
	t.Helper()
	timer := time.NewTimer(streamWait)
	defer timer.Stop()
	for {
		select {
		case f, open := <-c.frames:
			if !open {
				t.Fatalf("the stream ended before %s: %v", what, <-c.done)
			}
			if match(f) {
				return f
			}
		case <-timer.C:
			t.Fatalf("no %s within %s", what, streamWait)
		}
	}
}

func (c *sseClient) event(t *testing.T, name string) frame {
	t.Helper()
	return c.next(t, "event "+name, func(f frame) bool { return f.event == name })
}

// waitEnd waits for the server to end the stream and returns the frames
// read until then.
func (c *sseClient) waitEnd(t *testing.T) []frame {
	t.Helper()
	var got []frame
	timer := time.NewTimer(streamWait)
	defer timer.Stop()
	for {
		select {
		case f, open := <-c.frames:
			if !open {
				return got
			}
			got = append(got, f)
		case <-timer.C:
			t.Fatalf("the server did not end the stream within %s (%d frames read)", streamWait, len(got))
		}
	}
}

const auth = "Harbor-Secret " + secret

func setupStream(t *testing.T, configure func(*api.StreamOptions)) (*bundle, *events.Bus) {
	t.Helper()
	bus := events.New()
	b := setup(t, func(_ *fakeBackend, o *api.Options) {
		o.Stream = api.StreamOptions{Bus: bus}
		if configure != nil {
			configure(&o.Stream)
		}
	})
	return b, bus
}

func TestEventStreamDeliversJobEvents(t *testing.T) {
	t.Parallel()
	b, bus := setupStream(t, nil)
	c := openStream(t, b.srv.URL, auth)
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	} {
		if got := c.resp.Header.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	ready := c.event(t, "ready")
	var r struct {
		KeepAlive float64 `json:"keepalive_seconds"`
		Buffer    int     `json:"buffer"`
	}
	if err := json.Unmarshal([]byte(ready.data), &r); err != nil || r.KeepAlive != 15 || r.Buffer != api.DefaultStreamBuffer {
		t.Errorf("ready = %s (%v); want the default keep-alive and buffer", ready.data, err)
	}
	// Subscribed before ready: whatever is published now is delivered.
	at := time.UnixMilli(1700000000123)
	bus.Publish(
		job.Event{JobID: id1, Name: "DEMO", Kind: job.Generic, To: job.Pending, Revision: 1, Time: at, Reason: job.Submitted},
		job.Event{JobID: id1, Name: "DEMO", Kind: job.Generic, From: job.Running, To: job.Running, FromRevision: 1, Revision: 1,
			Time: at, Reason: job.CheckedIn, CheckIn: `{"blob":"sha256:ab","index":1,"total":3}`, UpstreamJobID: id2,
			Detail: strings.Repeat("x", 5000)},
	)
	first := c.event(t, "job")
	if want := `{"job_id":"` + id1 + `","name":"DEMO","kind":"Generic","status":"Pending","revision":1,"time":1700000000123,"reason":"submitted"}`; first.data != want {
		t.Errorf("first event = %s\nwant %s", first.data, want)
	}
	second := c.event(t, "job")
	var ev map[string]any
	if err := json.Unmarshal([]byte(second.data), &ev); err != nil {
		t.Fatalf("event is not JSON: %v: %s", err, second.data)
	}
	for k, want := range map[string]any{"status": "Running", "from": "Running", "reason": "checked_in",
		"check_in": `{"blob":"sha256:ab","index":1,"total":3}`, "upstream_job_id": id2} {
		if ev[k] != want {
			t.Errorf("%s = %v; want %v", k, ev[k], want)
		}
	}
	if d, _ := ev["detail"].(string); len(d) > 2100 || !strings.HasSuffix(d, "...") {
		t.Errorf("detail is %d bytes; want it clipped to about 2 KiB", len(d))
	}
}

func TestEventStreamNeedsTheSecret(t *testing.T) {
	t.Parallel()
	b, _ := setupStream(t, nil)
	for name, a := range map[string]string{"Missing": "", "Wrong": "Harbor-Secret nope", "Scheme": "Bearer " + secret} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			resp := streamRequest(t, b.srv.URL, a)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			wantError(t, response{status: resp.StatusCode, header: resp.Header, body: body}, http.StatusUnauthorized, 10011)
		})
	}
}

func TestEventStreamWithoutABusIsNotARoute(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	wantError(t, b.do(t, http.MethodGet, "/api/v1/events", ""), http.StatusNotFound, 10010)
	wantError(t, b.do(t, http.MethodPost, "/api/v1/events", ""), http.StatusMethodNotAllowed, 10013)
}

func TestEventStreamKeepsAlive(t *testing.T) {
	t.Parallel()
	b, _ := setupStream(t, func(o *api.StreamOptions) { o.KeepAlive = 50 * time.Millisecond })
	c := openStream(t, b.srv.URL, auth)
	c.event(t, "ready")
	for range 2 {
		c.next(t, "a keep-alive comment", func(f frame) bool { return f.comment == "keep-alive" })
	}
}

func TestEventStreamEndsWhenTheHostStops(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	b, _ := setupStream(t, func(o *api.StreamOptions) { o.Done = done })
	c := openStream(t, b.srv.URL, auth)
	c.event(t, "ready")
	close(done)
	got := c.waitEnd(t)
	if len(got) == 0 || got[len(got)-1].event != "end" || !strings.Contains(got[len(got)-1].data, "stopping") {
		t.Fatalf("frames before the end = %+v; want an end event last", got)
	}
}

// A client that does not read is dropped, the funnel never waits for it,
// and its slot is free again.
func TestEventStreamDropsASlowClient(t *testing.T) {
	t.Parallel()
	b, bus := setupStream(t, func(o *api.StreamOptions) {
		o.Buffer, o.MaxClients, o.WriteTimeout = 2, 1, 200*time.Millisecond
	})
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open the stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	// The client reads nothing. Events far more than fit the buffer, the
	// socket buffers included.
	big := strings.Repeat("e", 2000)
	start := time.Now()
	for range 5000 {
		bus.Publish(job.Event{JobID: id1, Name: "DEMO", To: job.Running, Reason: job.CheckedIn, CheckIn: big})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("publishing 5000 events to a stuck client took %s: the funnel waited for it", d)
	}
	// The server ends the stream: what is left to read is finite.
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	select {
	case <-ended:
	case <-time.After(streamWait):
		resp.Body.Close()
		<-ended
		t.Fatalf("the stream of a client that read nothing still runs after %s", streamWait)
	}
	// Its slot is free: a new stream is served (the server may take a
	// moment to see the old one end).
	deadline := time.Now().Add(streamWait)
	for {
		r := streamRequest(t, b.srv.URL, auth)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new stream is refused with %d after the slow one was dropped", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEventStreamOverflowTellsTheClient(t *testing.T) {
	t.Parallel()
	b, bus := setupStream(t, func(o *api.StreamOptions) { o.Buffer = 1 })
	c := openStream(t, b.srv.URL, auth)
	c.event(t, "ready")
	// One event fits; publishing many in one call overflows the
	// subscription before the stream can take them.
	evs := make([]job.Event, 1000)
	for i := range evs {
		evs[i] = job.Event{JobID: id1, Name: "DEMO", To: job.Running, Reason: job.CheckedIn, CheckIn: fmt.Sprint(i)}
	}
	bus.Publish(evs...)
	got := c.waitEnd(t)
	last := got[len(got)-1]
	var o struct {
		Dropped uint64 `json:"dropped"`
	}
	if last.event != "overflow" || json.Unmarshal([]byte(last.data), &o) != nil || o.Dropped == 0 {
		t.Fatalf("last frame = %+v; want an overflow event with the number dropped", last)
	}
	if !strings.Contains(b.logs.String(), "event stream dropped") {
		t.Errorf("the log does not say the stream was dropped:\n%s", b.logs.String())
	}
}

func TestEventStreamLimitsItsClients(t *testing.T) {
	t.Parallel()
	b, _ := setupStream(t, func(o *api.StreamOptions) { o.MaxClients = 1 })
	c := openStream(t, b.srv.URL, auth)
	c.event(t, "ready")
	resp := streamRequest(t, b.srv.URL, auth)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "1 event streams are open") {
		t.Fatalf("a second stream = %d %s; want a refusal that says why", resp.StatusCode, body)
	}
}

func TestEventStreamSendsCountsWhenTheyChange(t *testing.T) {
	t.Parallel()
	var running atomic.Int64
	running.Store(1)
	var reads atomic.Int64
	b, _ := setupStream(t, func(o *api.StreamOptions) {
		o.CountsEvery = 20 * time.Millisecond
		o.Counts = func(ctx context.Context) (*api.Counts, error) {
			if reads.Add(1) == 2 {
				return nil, errors.New("redis is away")
			}
			return &api.Counts{Jobs: map[string]map[job.Status]int64{"DEMO": {job.Running: running.Load()}},
				Queued: map[string]int64{"DEMO": 2}, Scheduled: 3}, nil
		}
	})
	c := openStream(t, b.srv.URL, auth)
	c.event(t, "ready")
	if f := c.event(t, "counts"); f.data != `{"jobs":{"DEMO":{"Running":1}},"queued":{"DEMO":2},"scheduled":3,"retrying":0}` {
		t.Errorf("first counts = %s", f.data)
	}
	running.Store(4)
	f := c.next(t, "the changed counts", func(f frame) bool { return f.event == "counts" || f.event == "job" })
	if !strings.Contains(f.data, `"Running":4`) {
		t.Errorf("next counts = %s; want Running 4 (unchanged counts are not sent again)", f.data)
	}
	if !strings.Contains(b.logs.String(), "redis is away") {
		t.Errorf("a failed read of the counts is not logged:\n%s", b.logs.String())
	}
}

// The server's read and write timeouts bound requests, not a stream.
func TestEventStreamOutlivesTheServerTimeouts(t *testing.T) {
	t.Parallel()
	bus := events.New()
	h := api.New(&fakeBackend{entered: make(chan struct{})}, api.Options{Secret: secret, Logger: hclog.NewNullLogger(),
		Stream: api.StreamOptions{Bus: bus, KeepAlive: 30 * time.Millisecond}})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	c := openStream(t, srv.URL, auth)
	c.event(t, "ready")
	start := time.Now()
	for time.Since(start) < 400*time.Millisecond {
		c.next(t, "a keep-alive", func(f frame) bool { return f.comment == "keep-alive" })
	}
	bus.Publish(job.Event{JobID: id1, Name: "DEMO", To: job.Success, Reason: job.Succeeded})
	if f := c.event(t, "job"); !strings.Contains(f.data, `"status":"Success"`) {
		t.Errorf("event after the timeouts = %s", f.data)
	}
}

// The dashboard is mounted under /dashboard without authentication, and
// nothing else is.
func TestDashboardMount(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "dashboard "+r.URL.Path)
	})
	b := setup(t, func(_ *fakeBackend, o *api.Options) { o.Dashboard = dash })
	for _, p := range []string{"/dashboard", "/dashboard/", "/dashboard/app.js"} {
		req := b.newRequest(t, http.MethodGet, p, "")
		req.Header.Del("Authorization")
		r := b.send(t, req)
		if r.status != http.StatusOK || string(r.body) != "dashboard "+p {
			t.Errorf("GET %s without a secret = %d %s; want the dashboard's answer", p, r.status, r.body)
		}
	}
	for _, p := range []string{"/dashboardx", "/api/v1/dashboard/", "/"} {
		req := b.newRequest(t, http.MethodGet, p, "")
		req.Header.Del("Authorization")
		wantError(t, b.send(t, req), http.StatusUnauthorized, 10011)
	}
	if n := served.Load(); n != 3 {
		t.Errorf("the dashboard served %d requests; want 3", n)
	}
}
