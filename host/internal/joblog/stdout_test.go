package joblog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

func TestAppendEntry(t *testing.T) {
	t.Parallel()
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name  string
		at    time.Time
		level Level
		msg   string
		want  string
	}{
		{"Plain", t0, Info, "message", "2026-11-21T14:03:05Z [INFO] message\n"},
		{"ToUTC", t0.In(tokyo), Warning, "m", "2026-11-21T14:03:05Z [WARNING] m\n"},
		{"DropsSubSeconds", t0.Add(999 * time.Millisecond), Error, "m", "2026-11-21T14:03:05Z [ERROR] m\n"},
		{"TrailingNewline", t0, Debug, "m\n", "2026-11-21T14:03:05Z [DEBUG] m\n"},
		{"TrailingNewlines", t0, Debug, "m\n\n\n", "2026-11-21T14:03:05Z [DEBUG] m\n"},
		{"InnerNewlines", t0, Fatal, "a\nb\n\nc", "2026-11-21T14:03:05Z [FATAL] a\nb\n\nc\n"},
		{"Empty", t0, Info, "", "2026-11-21T14:03:05Z [INFO] \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(appendEntry(nil, tt.at, tt.level, tt.msg)); got != tt.want {
				t.Fatalf("entry = %q, want %q", got, tt.want)
			}
		})
	}
}

func newTestStdOutput(w *procs.Buffer, level Level) Backend {
	b := NewStdOutput(w, level)
	b.(*stdOutput).now = fixedClock(t0)
	return b
}

func TestStdOutputLevels(t *testing.T) {
	t.Parallel()
	for _, min := range []Level{Debug, Info, Warning, Error, Fatal} {
		t.Run(min.String(), func(t *testing.T) {
			t.Parallel()
			var buf procs.Buffer
			l := mustOpen(t, newTestStdOutput(&buf, min), id1)
			var want strings.Builder
			for lv := Debug; lv <= Fatal; lv++ {
				l.Log(lv, "at "+lv.String())
				if lv >= min {
					fmt.Fprintf(&want, "%s 2026-11-21T14:03:05Z [%s] at %s\n", id1, lv, lv)
				}
			}
			if got := buf.String(); got != want.String() {
				t.Fatalf("output:\n%s\nwant:\n%s", got, want.String())
			}
		})
	}
}

func TestStdOutputPrefixesEveryLine(t *testing.T) {
	t.Parallel()
	var buf procs.Buffer
	b := newTestStdOutput(&buf, Debug)
	if b.Name() != "STD_OUTPUT" {
		t.Fatalf("Name() = %q", b.Name())
	}
	l := mustOpen(t, b, id3)
	l.Log(Info, "first\nsecond\n")
	want := id3 + " 2026-11-21T14:03:05Z [INFO] first\n" + id3 + " second\n"
	if got := buf.String(); got != want {
		t.Fatalf("output = %q, want %q", got, want)
	}
}

func TestStdOutputCloseTwiceAndLogAfterClose(t *testing.T) {
	t.Parallel()
	var buf procs.Buffer
	l, err := newTestStdOutput(&buf, Debug).Open(id1)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Info, "before")
	if err := l.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l.Log(Info, "after")
	if got := buf.String(); strings.Contains(got, "after") || !strings.Contains(got, "before") {
		t.Fatalf("output = %q", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

var errWrite = errors.New("disk on fire")

func TestStdOutputCloseReportsWriteError(t *testing.T) {
	t.Parallel()
	l, err := NewStdOutput(failWriter{}, Debug).Open(id1)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Info, "lost")
	if err := l.Close(); !errors.Is(err, errWrite) {
		t.Fatalf("Close = %v, want %v", err, errWrite)
	}
}

// TestStdOutputConcurrentJobs writes from many jobs' loggers into one
// writer that is not itself safe for concurrent use: the race detector and
// the line check catch a missing lock.
func TestStdOutputConcurrentJobs(t *testing.T) {
	t.Parallel()
	var raw bytes.Buffer // deliberately unsynchronised
	b := NewStdOutput(&raw, Debug)
	b.(*stdOutput).now = fixedClock(t0)
	const jobs, entries = 20, 50
	var wg sync.WaitGroup
	for g := range jobs {
		id := fmt.Sprintf("%024x", g)
		l := mustOpen(t, b, id)
		wg.Go(func() {
			for i := range entries {
				l.Log(Info, fmt.Sprintf("g%d i%d %s", g, i, strings.Repeat("x", 100+i)))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(raw.String(), "\n"), "\n")
	if len(lines) != jobs*entries {
		t.Fatalf("got %d lines, want %d", len(lines), jobs*entries)
	}
	for _, line := range lines {
		var g, i int
		var x string
		if _, err := fmt.Sscanf(line[25:], "2026-11-21T14:03:05Z [INFO] g%d i%d %s", &g, &i, &x); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		if line[:25] != fmt.Sprintf("%024x ", g) || x != strings.Repeat("x", 100+i) {
			t.Fatalf("bad line %q", line)
		}
	}
}
