package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/berth-dev/berth/host/internal/events"
	"github.com/berth-dev/berth/host/internal/job"
)

// eventsPath is GET /api/v1/events, a Berth extension: this host's job
// events as server-sent events (text/event-stream), for the dashboard.
// It is authenticated like every route but /stats.
//
// What a client reads, in order:
//
//	event: ready    {"keepalive_seconds":15,"buffer":512}, once subscribed:
//	                every change this host makes from then on follows
//	event: counts   {"jobs":{"DEMO":{"Running":1,...}},"queued":{...},...},
//	                on connect and whenever the cluster's counts change
//	                (read from Redis, so other hosts' changes show too)
//	event: job      one job.Event, as streamEvent encodes it
//	: keep-alive    a comment, when nothing else was sent for a while
//	event: overflow {"dropped":N}: the client read too slowly, events were
//	                lost and the stream ends; reload, then reconnect
//	event: end      {"reason":"..."}: the host is stopping
//
// The stream never slows the funnel: the bus drops what a full
// subscription cannot take, and a write that the client does not read
// within StreamOptions.WriteTimeout ends the stream.
const eventsPath = prefix + "/events"

// StreamOptions configure GET /api/v1/events. Without a Bus the route
// answers 404, like a path no route serves.
type StreamOptions struct {
	// Bus is the host's events funnel.
	Bus *events.Bus
	// Done is closed when the host stops: every stream ends then (an
	// http.Server's Shutdown does not end a streaming answer by itself).
	Done <-chan struct{}
	// Counts, if set, reads the cluster's job counts; nil sends none.
	Counts func(ctx context.Context) (*Counts, error)
	// MaxClients bounds the streams served at once (each holds a
	// connection and a buffer); more are refused. Zero or less means
	// DefaultMaxStreams.
	MaxClients int
	// Buffer is how many events a stream holds for a client that reads
	// slowly; past that the client is dropped. Zero or less means
	// DefaultStreamBuffer.
	Buffer int
	// KeepAlive is the longest silence before a keep-alive comment. Zero
	// or less means DefaultStreamKeepAlive.
	KeepAlive time.Duration
	// CountsEvery is how often the counts are read again. Zero or less
	// means DefaultStreamCountsEvery.
	CountsEvery time.Duration
	// WriteTimeout bounds one write to the client. Zero or less means
	// DefaultStreamWriteTimeout.
	WriteTimeout time.Duration
}

// Defaults of StreamOptions.
const (
	DefaultMaxStreams         = 16
	DefaultStreamBuffer       = 512
	DefaultStreamKeepAlive    = 15 * time.Second
	DefaultStreamCountsEvery  = 2 * time.Second
	DefaultStreamWriteTimeout = 10 * time.Second
)

// Counts are the cluster's job counts, as the counts event sends them.
type Counts struct {
	// Jobs counts the jobs with stats by name and status.
	Jobs map[string]map[job.Status]int64 `json:"jobs"`
	// Queued counts the entries waiting in each job name's queue.
	Queued map[string]int64 `json:"queued"`
	// Scheduled and Retrying count the entries waiting for their run
	// time and for their retry.
	Scheduled int64 `json:"scheduled"`
	Retrying  int64 `json:"retrying"`
}

// streamEvent is a job.Event as the stream sends it.
type streamEvent struct {
	JobID         string     `json:"job_id"`
	Name          string     `json:"name"`
	Kind          job.Kind   `json:"kind,omitempty"`
	From          job.Status `json:"from,omitempty"`
	Status        job.Status `json:"status"`
	FromRevision  int64      `json:"from_revision,omitempty"`
	Revision      int64      `json:"revision,omitempty"`
	Time          int64      `json:"time"` // unix milliseconds
	Reason        job.Reason `json:"reason"`
	CheckIn       string     `json:"check_in,omitempty"`
	RetryAt       int64      `json:"retry_at,omitempty"`
	UpstreamJobID string     `json:"upstream_job_id,omitempty"`
	Detail        string     `json:"detail,omitempty"`
}

// maxDetail bounds the detail of an event (a failed run's error).
const maxDetail = 2 << 10

func newStreamEvent(ev job.Event) streamEvent {
	d := ev.Detail
	if len(d) > maxDetail {
		d = d[:maxDetail] + "..."
	}
	var ms int64
	if !ev.Time.IsZero() {
		ms = ev.Time.UnixMilli()
	}
	return streamEvent{JobID: ev.JobID, Name: ev.Name, Kind: ev.Kind, From: ev.From, Status: ev.To,
		FromRevision: ev.FromRevision, Revision: ev.Revision, Time: ms, Reason: ev.Reason, CheckIn: ev.CheckIn,
		RetryAt: ev.RetryAt, UpstreamJobID: ev.UpstreamJobID, Detail: d}
}

// streamer is the shared state of the streams: their slots and the
// counts they share.
type streamer struct {
	opts  StreamOptions
	slots chan struct{}

	mu       sync.Mutex // held while the counts are read: one read at a time
	counts   *Counts
	countsAt time.Time
}

func newStreamer(o StreamOptions) *streamer {
	if o.Bus == nil {
		return nil
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxStreams
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultStreamBuffer
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultStreamKeepAlive
	}
	if o.CountsEvery <= 0 {
		o.CountsEvery = DefaultStreamCountsEvery
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultStreamWriteTimeout
	}
	return &streamer{opts: o, slots: make(chan struct{}, o.MaxClients)}
}

// readCounts returns the counts, read again if the last read is older
// than half of CountsEvery: many streams cost one read.
func (st *streamer) readCounts(ctx context.Context) (*Counts, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.counts != nil && time.Since(st.countsAt) < st.opts.CountsEvery/2 {
		return st.counts, nil
	}
	ctx, cancel := context.WithTimeout(ctx, st.opts.CountsEvery+time.Second)
	defer cancel()
	c, err := st.opts.Counts(ctx)
	if err != nil {
		return nil, err
	}
	st.counts, st.countsAt = c, time.Now()
	return c, nil
}

// streamLimitError is a stream refused because StreamOptions.MaxClients
// are open.
type streamLimitError struct{ max int }

func (e *streamLimitError) Error() string {
	return fmt.Sprintf("%d event streams are open, the most this host serves at once: close one (another dashboard tab?) or try again later", e.max)
}

// GET /api/v1/events
func (s *server) events(x *exchange, _ httprouter.Params) error {
	st := s.stream
	if st == nil {
		return &routeError{method: x.req.Method, path: x.req.URL.Path}
	}
	select {
	case st.slots <- struct{}{}:
		defer func() { <-st.slots }()
	default:
		return &streamLimitError{max: st.opts.MaxClients}
	}
	sub := st.opts.Bus.Subscribe(st.opts.Buffer)
	defer sub.Close()

	ctx := x.req.Context()
	// Each write sets its own deadline: the server's write timeout bounds
	// an answer, not a stream (its read timeout ends with the request,
	// which has no body).
	rc := http.NewResponseController(x)
	h := x.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // a buffering proxy would hold the events back

	w := &sseWriter{x: x, rc: rc, timeout: st.opts.WriteTimeout}
	x.WriteHeader(http.StatusOK)
	w.event("ready", map[string]any{"keepalive_seconds": st.opts.KeepAlive.Seconds(), "buffer": st.opts.Buffer})

	var (
		lastCounts *Counts
		countsC    <-chan time.Time
	)
	sendCounts := func() {
		c, err := st.readCounts(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("event stream: cannot read the job counts", "error", err)
			}
			return
		}
		if lastCounts == nil || !sameCounts(lastCounts, c) {
			w.event("counts", c)
			lastCounts = c
		}
	}
	if st.opts.Counts != nil {
		sendCounts()
		t := time.NewTicker(st.opts.CountsEvery)
		defer t.Stop()
		countsC = t.C
	}
	w.flush()

	keepAlive := time.NewTimer(st.opts.KeepAlive)
	defer keepAlive.Stop()
	for w.err == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-st.opts.Done:
			w.event("end", map[string]string{"reason": "the host is stopping"})
			w.flush()
			return nil
		case ev, open := <-sub.C():
			if !open {
				return nil
			}
			w.event("job", newStreamEvent(ev))
			// Take what else is waiting (a bounded batch), then flush once.
			for n, more := 1, true; more && n < st.opts.Buffer && w.err == nil; n++ {
				select {
				case ev, open = <-sub.C():
					if !open {
						return nil
					}
					w.event("job", newStreamEvent(ev))
				default:
					more = false
				}
			}
		case <-countsC:
			sendCounts()
		case <-keepAlive.C:
			w.comment("keep-alive")
		}
		if n := sub.Dropped(); n > 0 {
			w.event("overflow", map[string]any{"dropped": n,
				"reason": "the client read too slowly and events were lost: reload the jobs, then reconnect"})
			w.flush()
			s.log.Info("event stream dropped: its client read too slowly", "dropped", n)
			return nil
		}
		if w.flush() {
			// Something went out: the silence starts again.
			if !keepAlive.Stop() {
				select {
				case <-keepAlive.C:
				default:
				}
			}
			keepAlive.Reset(st.opts.KeepAlive)
		}
	}
	s.log.Debug("event stream ended: the client is gone or too slow", "error", w.err)
	return nil
}

// sseWriter writes server-sent events; after its first error it writes
// nothing more and err says why.
type sseWriter struct {
	x       *exchange
	rc      *http.ResponseController
	timeout time.Duration
	pending bool // written since the last flush
	err     error
}

func (w *sseWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	if err := w.rc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		w.err = err
		return
	}
	_, w.err = w.x.Write(b)
	w.pending = true
}

func (w *sseWriter) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil { // cannot happen: plain fields
		data = []byte(`{}`)
	}
	// JSON holds no raw newline, so the data is one "data:" line.
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	w.write(append(b, "\n\n"...))
}

func (w *sseWriter) comment(text string) { w.write([]byte(": " + text + "\n\n")) }

// flush sends what was written and tells whether there was anything.
func (w *sseWriter) flush() bool {
	if w.err != nil || !w.pending {
		return false
	}
	w.pending = false
	if err := w.rc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		w.err = err
		return false
	}
	w.err = w.rc.Flush()
	return w.err == nil
}

// sameCounts tells whether a and b count the same.
func sameCounts(a, b *Counts) bool {
	if a.Scheduled != b.Scheduled || a.Retrying != b.Retrying || !maps.Equal(a.Queued, b.Queued) ||
		len(a.Jobs) != len(b.Jobs) {
		return false
	}
	for name, m := range a.Jobs {
		if n, ok := b.Jobs[name]; !ok || !maps.Equal(m, n) {
			return false
		}
	}
	return true
}
