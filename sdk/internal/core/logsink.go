package core

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/sdk/proto"
)

// Bounds of the log buffer of one job. A job that logs faster than the host
// takes its lines waits for the buffer to drain (backpressure) rather than
// growing the plugin's memory.
const (
	maxBatchEntries = 1000
	maxBatchBytes   = 1 << 20
	maxPendingBytes = 4 << 20
)

// logSink batches a job's log lines and sends them to the host in order,
// one batch in flight at a time, so that logging costs the job a memory
// append rather than an RPC per line.
type logSink struct {
	send func([]*proto.LogEntry) error

	mu      sync.Mutex
	cond    *sync.Cond
	pending []*proto.LogEntry
	bytes   int
	closed  bool
	added   uint64 // lines added so far
	sent    uint64 // lines handed to send so far (and returned)
	kick    chan struct{}
	done    chan struct{}
}

func newLogSink(send func([]*proto.LogEntry) error) *logSink {
	s := &logSink{send: send, kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s
}

func (s *logSink) add(e *proto.LogEntry) {
	s.mu.Lock()
	for s.bytes >= maxPendingBytes && !s.closed {
		s.wake()
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pending = append(s.pending, e)
	s.bytes += len(e.Message)
	s.added++
	s.mu.Unlock()
	s.wake()
}

func (s *logSink) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush returns once every line added before the call has been sent. Lines
// added meanwhile do not hold it up.
func (s *logSink) flush() {
	s.mu.Lock()
	for target := s.added; s.sent < target && !s.closed; {
		s.wake()
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// close sends what is left and stops the sink.
func (s *logSink) close() {
	s.flush()
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wake()
	<-s.done
}

func (s *logSink) loop() {
	defer close(s.done)
	for range s.kick {
		for {
			s.mu.Lock()
			if len(s.pending) == 0 {
				closed := s.closed
				s.cond.Broadcast()
				s.mu.Unlock()
				if closed {
					return
				}
				break
			}
			batch, size := s.takeBatch()
			s.mu.Unlock()

			// A failed send loses these lines: the host is gone or the job's
			// log is closed, and nobody could read them anyway.
			_ = s.send(batch)

			s.mu.Lock()
			s.bytes -= size
			s.sent += uint64(len(batch))
			s.cond.Broadcast()
			s.mu.Unlock()
		}
	}
}

// takeBatch removes the next batch from pending; s.mu is held.
func (s *logSink) takeBatch() ([]*proto.LogEntry, int) {
	n, size := 0, 0
	for n < len(s.pending) && n < maxBatchEntries {
		l := len(s.pending[n].Message)
		if n > 0 && size+l > maxBatchBytes {
			break
		}
		size += l
		n++
	}
	batch := make([]*proto.LogEntry, n)
	copy(batch, s.pending[:n])
	s.pending = s.pending[n:]
	return batch, size
}

// logHandler is the slog.Handler of a job's logger.
type logHandler struct {
	sink   *logSink
	prefix string // group names, dot-joined, ending in "."
	attrs  string // pre-formatted " key=value" pairs
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	h.sink.add(&proto.LogEntry{Level: logLevel(r.Level), Message: b.String(), TimeUnixNano: t.UnixNano()})
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	return &logHandler{sink: h.sink, prefix: h.prefix, attrs: b.String()}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{sink: h.sink, prefix: h.prefix + name + ".", attrs: h.attrs}
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	v := a.Value.String()
	if strings.ContainsAny(v, " \t\n\"=") {
		v = fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(b, " %s%s=%s", prefix, a.Key, v)
}

// logLevel maps slog levels onto the job log's levels.
func logLevel(l slog.Level) proto.LogLevel {
	switch {
	case l < slog.LevelInfo:
		return proto.LogLevel_LOG_LEVEL_DEBUG
	case l < slog.LevelWarn:
		return proto.LogLevel_LOG_LEVEL_INFO
	case l < slog.LevelError:
		return proto.LogLevel_LOG_LEVEL_WARNING
	case l <= slog.LevelError:
		return proto.LogLevel_LOG_LEVEL_ERROR
	default:
		return proto.LogLevel_LOG_LEVEL_FATAL
	}
}
