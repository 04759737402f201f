package core

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk/proto"
)

// newTestLogger returns a logger like a job's, and a function that ends its
// sink and returns every entry it sent.
func newTestLogger(t *testing.T) (*slog.Logger, func() []*proto.LogEntry) {
	t.Helper()
	var entries []*proto.LogEntry
	s := newLogSink(func(batch []*proto.LogEntry) error {
		entries = append(entries, batch...)
		return nil
	})
	t.Cleanup(s.close)
	return slog.New(&logHandler{sink: s}), func() []*proto.LogEntry {
		s.close()
		return entries
	}
}

// secret resolves to a redacted value through slog.LogValuer.
type secret string

func (secret) LogValue() slog.Value { return slog.StringValue("***") }

func TestLogHandlerFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{"MessageOnly", func(l *slog.Logger) { l.Info("hello") }, "hello"},
		{"Attrs", func(l *slog.Logger) { l.Info("copied", "n", 3, "repo", "library/redis", "ok", true) },
			"copied n=3 repo=library/redis ok=true"},
		{"WithAttrs", func(l *slog.Logger) { l.With("a", 1).With("b", 2).Info("m", "c", 3) }, "m a=1 b=2 c=3"},
		{"WithGroup", func(l *slog.Logger) { l.WithGroup("req").Info("m", "id", 7) }, "m req.id=7"},
		{"NestedGroups", func(l *slog.Logger) { l.WithGroup("a").WithGroup("b").Info("m", "k", "v") }, "m a.b.k=v"},
		{"AttrsBeforeGroupStayOutside", func(l *slog.Logger) {
			l.With("x", 1).WithGroup("g").With("y", 2).Info("m", "z", 3)
		}, "m x=1 g.y=2 g.z=3"},
		{"EmptyGroupName", func(l *slog.Logger) { l.WithGroup("").Info("m", "k", "v") }, "m k=v"},
		{"EmptyGroupNameInsideGroup", func(l *slog.Logger) { l.WithGroup("g").WithGroup("").Info("m", "k", "v") }, "m g.k=v"},
		{"GroupAttr", func(l *slog.Logger) { l.Info("m", slog.Group("req", "id", 7, "path", "/x")) }, "m req.id=7 req.path=/x"},
		{"GroupAttrInsideGroup", func(l *slog.Logger) { l.WithGroup("g").Info("m", slog.Group("r", "id", 1)) }, "m g.r.id=1"},
		{"GroupAttrInWithAttrs", func(l *slog.Logger) { l.With(slog.Group("r", "id", 1)).Info("m") }, "m r.id=1"},
		{"InlineGroup", func(l *slog.Logger) { l.Info("m", slog.Group("", "a", 1, "b", 2)) }, "m a=1 b=2"},
		{"EmptyGroupAttrDropped", func(l *slog.Logger) { l.Info("m", slog.Group("none"), "k", "v") }, "m k=v"},
		{"EmptyAttrDropped", func(l *slog.Logger) { l.Info("m", slog.Attr{}, "k", "v") }, "m k=v"},
		{"LogValuerResolved", func(l *slog.Logger) { l.Info("m", "password", secret("hunter2")) }, "m password=***"},
		{"Duration", func(l *slog.Logger) { l.Info("m", "took", 1500*time.Millisecond) }, "m took=1.5s"},
		{"QuoteSpace", func(l *slog.Logger) { l.Info("m", "k", "two words") }, `m k="two words"`},
		{"QuoteEquals", func(l *slog.Logger) { l.Info("m", "k", "a=b") }, `m k="a=b"`},
		{"QuoteQuote", func(l *slog.Logger) { l.Info("m", "k", `say "hi"`) }, `m k="say \"hi\""`},
		{"QuoteLoneQuote", func(l *slog.Logger) { l.Info("m", "k", `a"b`) }, `m k="a\"b"`},
		{"QuoteNewline", func(l *slog.Logger) { l.Info("m", "k", "one\ntwo") }, `m k="one\ntwo"`},
		{"QuoteTab", func(l *slog.Logger) { l.Info("m", "k", "one\ttwo") }, `m k="one\ttwo"`},
		{"QuoteInWithAttrs", func(l *slog.Logger) { l.With("k", "a b").Info("m") }, `m k="a b"`},
		{"NoQuotesNeeded", func(l *slog.Logger) { l.Info("m", "k", "a-b_c/d:e.f") }, "m k=a-b_c/d:e.f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, entries := newTestLogger(t)
			tc.log(l)
			got := entries()
			if len(got) != 1 {
				t.Fatalf("got %d entries, want 1", len(got))
			}
			if msg := got[0].GetMessage(); msg != tc.want {
				t.Errorf("message = %q, want %q", msg, tc.want)
			}
		})
	}
}

func TestLogHandlerWithGroupEmptyNameIsSameHandler(t *testing.T) {
	t.Parallel()
	h := &logHandler{prefix: "g.", attrs: " a=1"}
	if got := h.WithGroup(""); got != slog.Handler(h) {
		t.Errorf("WithGroup(\"\") = %#v, want the handler itself", got)
	}
}

func TestLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		level slog.Level
		want  proto.LogLevel
	}{
		{"BelowDebug", slog.LevelDebug - 4, proto.LogLevel_LOG_LEVEL_DEBUG},
		{"Debug", slog.LevelDebug, proto.LogLevel_LOG_LEVEL_DEBUG},
		{"JustBelowInfo", slog.LevelInfo - 1, proto.LogLevel_LOG_LEVEL_DEBUG},
		{"Info", slog.LevelInfo, proto.LogLevel_LOG_LEVEL_INFO},
		{"JustBelowWarn", slog.LevelWarn - 1, proto.LogLevel_LOG_LEVEL_INFO},
		{"Warn", slog.LevelWarn, proto.LogLevel_LOG_LEVEL_WARNING},
		{"JustBelowError", slog.LevelError - 1, proto.LogLevel_LOG_LEVEL_WARNING},
		{"Error", slog.LevelError, proto.LogLevel_LOG_LEVEL_ERROR},
		{"JustAboveError", slog.LevelError + 1, proto.LogLevel_LOG_LEVEL_FATAL},
		{"FarAboveError", slog.LevelError + 8, proto.LogLevel_LOG_LEVEL_FATAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := logLevel(tc.level); got != tc.want {
				t.Errorf("logLevel(%v) = %v, want %v", tc.level, got, tc.want)
			}
			// The logger passes every level, Debug included, with its mapping.
			l, entries := newTestLogger(t)
			l.Log(context.Background(), tc.level, "m")
			got := entries()
			if len(got) != 1 || got[0].GetLevel() != tc.want {
				t.Errorf("logged %v, want one entry of level %v", got, tc.want)
			}
		})
	}
}

func TestLogHandlerTime(t *testing.T) {
	t.Parallel()
	l, entries := newTestLogger(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	h := l.Handler()

	before := time.Now()
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "no time", 0)); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if err := h.Handle(context.Background(), slog.NewRecord(at, slog.LevelInfo, "set time", 0)); err != nil {
		t.Fatal(err)
	}

	got := entries()
	if len(got) != 2 {
		t.Fatalf("got %d entries, want 2", len(got))
	}
	if ts := got[0].GetTimeUnixNano(); ts < before.UnixNano() || ts > after.UnixNano() {
		t.Errorf("a record without time got %v, want the time it was handled", time.Unix(0, ts))
	}
	if ts := got[1].GetTimeUnixNano(); ts != at.UnixNano() {
		t.Errorf("a record with time got %v, want %v", time.Unix(0, ts), at)
	}
}
