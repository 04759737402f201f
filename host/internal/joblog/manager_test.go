package joblog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// fakeBackend records what its loggers receive, or fails to open.
type fakeBackend struct {
	name string
	err  error

	mu      sync.Mutex
	entries []string
	closes  int
}

func (f *fakeBackend) Name() string { return f.name }

func (f *fakeBackend) Open(jobID string) (Logger, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &fakeLogger{backend: f, id: jobID}, nil
}

func (f *fakeBackend) got() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.entries...), f.closes
}

type fakeLogger struct {
	backend *fakeBackend
	id      string
}

func (l *fakeLogger) Log(level Level, msg string) {
	l.backend.mu.Lock()
	defer l.backend.mu.Unlock()
	l.backend.entries = append(l.backend.entries, l.id+" "+level.String()+" "+msg)
}

func (l *fakeLogger) Close() error {
	l.backend.mu.Lock()
	defer l.backend.mu.Unlock()
	l.backend.closes++
	return nil
}

var errOpen = errors.New("backend down")

func newTestLogger(buf *procs.Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Trace})
}

func TestManagerOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fail     []bool // per fake backend: fails to open
		wantErr  bool
		wantLogs []string // in the hclog output
	}{
		{name: "AllOpen", fail: []bool{false, false, false}},
		{name: "OneOpen", fail: []bool{false}},
		{name: "PartialFailure", fail: []bool{true, false, true}, wantLogs: []string{"fake0", "fake2", "backend down", id1}},
		{name: "AllFail", fail: []bool{true, true}, wantErr: true, wantLogs: []string{"fake0", "fake1"}},
		{name: "NoBackend", fail: nil},
	}
	t.Run("BadIDNoBackend", func(t *testing.T) {
		t.Parallel()
		m := NewManager(nil, nil, nil, 0, nil)
		if l, err := m.Open("../x"); !errors.Is(err, ErrBadID) || l != nil {
			t.Fatalf("Open = %v, %v; want ErrBadID", l, err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logBuf procs.Buffer
			var fakes []*fakeBackend
			var backends []Backend
			for i, fail := range tt.fail {
				f := &fakeBackend{name: "fake" + string(rune('0'+i))}
				if fail {
					f.err = errOpen
				}
				fakes = append(fakes, f)
				backends = append(backends, f)
			}
			m := NewManager(backends, nil, nil, time.Hour, newTestLogger(&logBuf))

			l, err := m.Open(id1)
			if tt.wantErr {
				if !errors.Is(err, errOpen) || l != nil {
					t.Fatalf("Open = %v, %v; want an error wrapping %v", l, err, errOpen)
				}
			} else {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				l.Log(Info, "hello")
				l.Log(Debug, "world")
				if err := l.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if err := l.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				l.Log(Info, "after close") // must not panic
			}
			for i, f := range fakes {
				entries, closes := f.got()
				if tt.fail[i] {
					if len(entries) != 0 {
						t.Errorf("%s: failed backend got %q", f.name, entries)
					}
					continue
				}
				want := []string{id1 + " INFO hello", id1 + " DEBUG world"}
				if strings.Join(entries, "|") != strings.Join(want, "|") {
					t.Errorf("%s: got %q, want %q", f.name, entries, want)
				}
				if closes != 1 {
					t.Errorf("%s: closed %d times, want 1", f.name, closes)
				}
			}
			out := logBuf.String()
			for _, s := range tt.wantLogs {
				if !strings.Contains(out, s) {
					t.Errorf("manager log lacks %q:\n%s", s, out)
				}
			}
			if len(tt.wantLogs) == 0 && out != "" {
				t.Errorf("unexpected manager log:\n%s", out)
			}
		})
	}
}

// TestManagerFanOutRealBackends: one entry reaches the file and the
// standard output, each filtered by its own level, and is readable back.
func TestManagerFanOutRealBackends(t *testing.T) {
	t.Parallel()
	b := setupFileLevel(t, Warning, fixedClock(t0))
	var out procs.Buffer
	std := newTestStdOutput(&out, Debug)
	m := NewManager([]Backend{std, b.file}, b.file, nil, time.Hour, nil)

	l, err := m.Open(id3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(Info, "info")
	l.Log(Error, "error")

	wantStd := id3 + " 2026-11-21T14:03:05Z [INFO] info\n" + id3 + " 2026-11-21T14:03:05Z [ERROR] error\n"
	if got := out.String(); got != wantStd {
		t.Errorf("stdout = %q, want %q", got, wantStd)
	}
	got, err := m.Get(context.Background(), id3, 1<<20)
	if want := "2026-11-21T14:03:05Z [ERROR] error\n"; err != nil || string(got) != want {
		t.Errorf("Get = %q, %v; want %q", got, err, want)
	}
}

func TestManagerGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		getter  bool
		stored  string // "" for none
		id      string
		limit   int64
		want    string
		wantErr error
	}{
		{name: "NoGetter", id: id1, wantErr: ErrNotFound},
		{name: "NothingStored", getter: true, id: id1, wantErr: ErrNotFound},
		{name: "Stored", getter: true, stored: "a\nb\n", id: id1, want: "a\nb\n"},
		{name: "Limit", getter: true, stored: "a\nb\n", id: id1, limit: 3, want: "b\n"},
		{name: "BadID", getter: true, stored: "a\n", id: "../x", wantErr: ErrBadID},
		{name: "BadIDNoGetter", id: "../x", wantErr: ErrBadID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupFile(t)
			if tt.stored != "" {
				b.write(t, id1+".log", tt.stored)
			}
			var g Getter
			if tt.getter {
				g = b.file
			}
			m := NewManager([]Backend{b.file}, g, nil, time.Hour, nil)
			got, err := m.Get(context.Background(), tt.id, tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Get = %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Get = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// fakeSweeper counts its runs and reports each on calls.
type fakeSweeper struct {
	n     atomic.Int64
	calls chan struct{}
	err   error
}

func newFakeSweeper() *fakeSweeper {
	return &fakeSweeper{calls: make(chan struct{}, 1000)}
}

func (s *fakeSweeper) Sweep(context.Context) (int, error) {
	s.n.Add(1)
	s.calls <- struct{}{}
	return 1, s.err
}

func (s *fakeSweeper) wait(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-s.calls:
		case <-time.After(5 * time.Second):
			t.Fatalf("sweep %d of %d did not happen", i+1, n)
		}
	}
}

// quiet fails if the sweeper runs within a short while.
func (s *fakeSweeper) quiet(t *testing.T) {
	t.Helper()
	select {
	case <-s.calls:
		t.Fatal("unexpected sweep")
	case <-time.After(50 * time.Millisecond):
	}
}

// blockingSweeper sweeps until its context ends, then takes a while more.
type blockingSweeper struct {
	started  chan struct{}
	finished atomic.Bool
}

func (s *blockingSweeper) Sweep(ctx context.Context) (int, error) {
	close(s.started)
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond)
	s.finished.Store(true)
	return 0, ctx.Err()
}

func TestManagerStartStop(t *testing.T) {
	t.Parallel()

	t.Run("SweepsAtStartThenPeriodically", func(t *testing.T) {
		t.Parallel()
		s1, s2 := newFakeSweeper(), newFakeSweeper()
		var logBuf procs.Buffer
		m := NewManager(nil, nil, []Sweeper{s1, s2}, 5*time.Millisecond, newTestLogger(&logBuf))
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		s1.wait(t, 3)
		s2.wait(t, 3)
		m.Stop()
		if !strings.Contains(logBuf.String(), "removed=1") {
			t.Errorf("sweep results not logged:\n%s", logBuf.String())
		}
	})

	t.Run("SweepsOnceAtStart", func(t *testing.T) {
		t.Parallel()
		s := newFakeSweeper()
		m := NewManager(nil, nil, []Sweeper{s}, time.Hour, nil)
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.wait(t, 1)
		m.Stop()
	})

	t.Run("StartTwiceStopTwice", func(t *testing.T) {
		t.Parallel()
		s := newFakeSweeper()
		m := NewManager(nil, nil, []Sweeper{s}, time.Hour, nil)
		ctx := context.Background()
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		s.wait(t, 1)
		if err := m.Start(ctx); err != nil {
			t.Fatalf("second Start: %v", err)
		}
		s.quiet(t) // a second loop would sweep at once
		m.Stop()
		m.Stop()
		if n := s.n.Load(); n != 1 {
			t.Fatalf("%d sweeps, want 1", n)
		}
	})

	t.Run("RestartAfterStop", func(t *testing.T) {
		t.Parallel()
		s := newFakeSweeper()
		m := NewManager(nil, nil, []Sweeper{s}, time.Hour, nil)
		for range 2 {
			if err := m.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			s.wait(t, 1)
			m.Stop()
		}
	})

	t.Run("StopWaitsForSweep", func(t *testing.T) {
		t.Parallel()
		s := &blockingSweeper{started: make(chan struct{})}
		m := NewManager(nil, nil, []Sweeper{s}, time.Hour, nil)
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-s.started
		m.Stop()
		if !s.finished.Load() {
			t.Fatal("Stop returned before the running sweep did")
		}
	})

	t.Run("StopWithoutStart", func(t *testing.T) {
		t.Parallel()
		m := NewManager(nil, nil, []Sweeper{newFakeSweeper()}, time.Hour, nil)
		m.Stop()
		m.Stop()
	})

	t.Run("OutlivesTheStartContext", func(t *testing.T) {
		t.Parallel()
		s := newFakeSweeper()
		m := NewManager(nil, nil, []Sweeper{s}, time.Millisecond, nil)
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		s.wait(t, 1)
		cancel() // a start-up deadline, say: the sweeps go on
		for len(s.calls) > 0 {
			<-s.calls
		}
		s.wait(t, 2)
		m.Stop()
		m.Stop()
	})

	t.Run("SweepErrorLoggedLoopContinues", func(t *testing.T) {
		t.Parallel()
		s := newFakeSweeper()
		s.err = errors.New("sweep broke")
		var logBuf procs.Buffer
		m := NewManager(nil, nil, []Sweeper{s}, time.Millisecond, newTestLogger(&logBuf))
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.wait(t, 3)
		m.Stop()
		if !strings.Contains(logBuf.String(), "sweep broke") {
			t.Fatalf("sweep error not logged:\n%s", logBuf.String())
		}
	})

	t.Run("BadInterval", func(t *testing.T) {
		t.Parallel()
		for _, every := range []time.Duration{0, -time.Second} {
			s := newFakeSweeper()
			m := NewManager(nil, nil, []Sweeper{s}, every, nil)
			if err := m.Start(context.Background()); err == nil {
				t.Errorf("Start with interval %v: want an error", every)
			}
			m.Stop()
			if n := s.n.Load(); n != 0 {
				t.Errorf("interval %v: %d sweeps, want 0", every, n)
			}
		}
	})

	t.Run("NoSweepers", func(t *testing.T) {
		t.Parallel()
		m := NewManager(nil, nil, nil, 0, nil)
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		m.Stop()
		m.Stop()
	})

	t.Run("RealFileSweeper", func(t *testing.T) {
		t.Parallel()
		b := setupFileLevel(t, Info, fixedClock(time.Now().Add(72*time.Hour)))
		p := b.write(t, id1+".log", "old\n")
		m := NewManager([]Backend{b.file}, b.file, []Sweeper{b.file.Sweeper(24 * time.Hour)}, time.Hour, nil)
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer m.Stop()
		ctx := context.Background()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := m.Get(ctx, id1, 0); errors.Is(err, ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not swept at start", p)
			}
			time.Sleep(time.Millisecond)
		}
	})
}
