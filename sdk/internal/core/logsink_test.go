package core

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/sdk/proto"
)

// sendRecorder is a logSink's send function that records every batch.
type sendRecorder struct {
	// gate, when not nil, holds every send until it is closed.
	gate chan struct{}
	// entered, when not nil, gets a token (if it has room) as a send starts.
	entered chan struct{}
	// err is what every send returns.
	err error
	// onSend, when not nil, runs inside every send.
	onSend func()

	mu      sync.Mutex
	batches [][]string
}

func (r *sendRecorder) send(batch []*proto.LogEntry) error {
	msgs := make([]string, len(batch))
	for i, e := range batch {
		msgs[i] = e.GetMessage()
	}
	r.mu.Lock()
	r.batches = append(r.batches, msgs)
	r.mu.Unlock()
	if r.entered != nil {
		select {
		case r.entered <- struct{}{}:
		default:
		}
	}
	if r.onSend != nil {
		r.onSend()
	}
	if r.gate != nil {
		<-r.gate
	}
	return r.err
}

// sent returns the batches sent so far.
func (r *sendRecorder) sent() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// lines returns the lines sent so far, in order.
func (r *sendRecorder) lines() []string {
	return slices.Concat(r.sent()...)
}

// newTestSink starts a sink sending to r and closes it when the test ends.
func newTestSink(t *testing.T, r *sendRecorder) *logSink {
	t.Helper()
	s := newLogSink(r.send)
	t.Cleanup(func() {
		if r.gate != nil {
			select {
			case <-r.gate:
			default:
				close(r.gate)
			}
		}
		s.close()
	})
	return s
}

func entry(msg string) *proto.LogEntry { return &proto.LogEntry{Message: msg} }

// lineOf returns a line of n bytes that starts with name.
func lineOf(name string, n int) string {
	if n <= len(name) {
		return name[:n]
	}
	return name + strings.Repeat(".", n-len(name))
}

func TestLogSinkSendsLinesInOrder(t *testing.T) {
	t.Parallel()
	r := &sendRecorder{}
	s := newLogSink(r.send)
	var want []string
	for i := range 5000 {
		line := lineOf(fmt.Sprintf("line %d", i), 8+i%300)
		want = append(want, line)
		s.add(entry(line))
	}
	s.close()
	if got := r.lines(); !slices.Equal(got, want) {
		t.Fatalf("sent %d lines, want %d in the order added", len(got), len(want))
	}
	for i, b := range r.sent() {
		if len(b) == 0 {
			t.Errorf("batch %d is empty", i)
		}
	}
}

func TestLogSinkBatchLimits(t *testing.T) {
	t.Parallel()
	repeat := func(size, n int) []int {
		sizes := make([]int, n)
		for i := range sizes {
			sizes[i] = size
		}
		return sizes
	}
	tests := []struct {
		name string
		// sizes of the lines added while the first line is being sent
		sizes []int
		// batch lengths that follow the first line's batch
		want []int
	}{
		{"EntriesLimit", repeat(1, 2*maxBatchEntries+500), []int{maxBatchEntries, maxBatchEntries, 500}},
		{"BytesLimit", repeat(300<<10, 10), []int{3, 3, 3, 1}},
		{"ExactlyMaxBatchBytes", repeat(maxBatchBytes/4, 8), []int{4, 4}},
		{"OversizedLineTravelsAlone", []int{10, maxBatchBytes + 1, 10}, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &sendRecorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
			s := newTestSink(t, r)
			s.add(entry("first"))
			receive(t, r.entered, "the first send")
			var want []string
			for i, n := range tc.sizes {
				line := lineOf(fmt.Sprintf("%d:", i), n)
				want = append(want, line)
				s.add(entry(line))
			}
			close(r.gate)
			s.close()

			batches := r.sent()
			var got []int
			for _, b := range batches[1:] {
				got = append(got, len(b))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("batch lengths after the first = %v, want %v", got, tc.want)
			}
			for i, b := range batches {
				size := 0
				for _, l := range b {
					size += len(l)
				}
				if len(b) > maxBatchEntries || (len(b) > 1 && size > maxBatchBytes) {
					t.Errorf("batch %d has %d lines and %d bytes", i, len(b), size)
				}
			}
			if lines := r.lines(); !slices.Equal(lines[1:], want) {
				t.Error("lines were not sent in the order added")
			}
		})
	}
}

func TestLogSinkFlush(t *testing.T) {
	t.Parallel()

	t.Run("WaitsForEarlierLines", func(t *testing.T) {
		t.Parallel()
		r := &sendRecorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		s := newTestSink(t, r)
		want := []string{"one", "two", "three"}
		for _, l := range want {
			s.add(entry(l))
		}
		receive(t, r.entered, "the first send")
		flushed := async(s.flush)
		quiet(t, flushed, "flush returning while a send is held")
		close(r.gate)
		receive(t, flushed, "flush")
		if got := r.lines(); !slices.Equal(got, want) {
			t.Errorf("after flush, sent %q, want %q", got, want)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		r := &sendRecorder{}
		s := newTestSink(t, r)
		receive(t, async(s.flush), "flush of an empty sink")
		if got := r.sent(); len(got) != 0 {
			t.Errorf("flush of an empty sink sent %q", got)
		}
	})

	t.Run("NotStarvedByLaterLines", func(t *testing.T) {
		t.Parallel()
		// Every send logs one more line, as a job whose goroutine logs
		// without pause does: the sink is never empty. The stream stops by
		// itself after limit lines, far more than flush needs.
		const limit = 100_000
		var (
			s        *logSink
			mu       sync.Mutex
			count    int
			flushing = make(chan struct{})
		)
		r := &sendRecorder{onSend: func() {
			<-flushing
			mu.Lock()
			count++
			n := count
			mu.Unlock()
			if n < limit {
				s.add(entry(fmt.Sprintf("later %d", n)))
			}
		}}
		s = newTestSink(t, r)
		s.add(entry("first"))
		close(flushing)
		s.flush()
		mu.Lock()
		n := count
		mu.Unlock()
		if n >= limit {
			t.Errorf("flush returned after %d sends, only once nothing more was logged", n)
		}
		if lines := r.lines(); len(lines) == 0 || lines[0] != "first" {
			t.Errorf("flush returned before the line added before it was sent: %q", lines)
		}
	})
}

func TestLogSinkClose(t *testing.T) {
	t.Parallel()

	t.Run("SendsWhatIsLeft", func(t *testing.T) {
		t.Parallel()
		r := &sendRecorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		s := newLogSink(r.send)
		s.add(entry("one"))
		receive(t, r.entered, "the first send")
		s.add(entry("two"))
		s.add(entry("three"))
		closed := async(s.close)
		quiet(t, closed, "close returning while a send is held")
		close(r.gate)
		receive(t, closed, "close")
		if got, want := r.lines(), []string{"one", "two", "three"}; !slices.Equal(got, want) {
			t.Errorf("sent %q, want %q", got, want)
		}
	})

	t.Run("IsTheEnd", func(t *testing.T) {
		t.Parallel()
		r := &sendRecorder{}
		s := newLogSink(r.send)
		s.add(entry("before"))
		s.close()
		select {
		case <-s.done:
		default:
			t.Fatal("the sink's goroutine is still running after close")
		}
		s.add(entry("after"))
		s.mu.Lock()
		kept := len(s.pending)
		s.mu.Unlock()
		if kept != 0 {
			t.Errorf("the sink kept %d lines added after close", kept)
		}
		receive(t, async(s.flush), "flush after close")
		receive(t, async(s.close), "a second close")
		if got, want := r.lines(), []string{"before"}; !slices.Equal(got, want) {
			t.Errorf("sent %q, want %q", got, want)
		}
	})
}

func TestLogSinkBackpressure(t *testing.T) {
	t.Parallel()
	r := &sendRecorder{gate: make(chan struct{})}
	s := newTestSink(t, r)

	// Up to maxPendingBytes a line is only an append, sent or not.
	receive(t, async(func() { s.add(entry(lineOf("a", maxPendingBytes-1))) }), "add below the limit")
	receive(t, async(func() { s.add(entry("b")) }), "add reaching the limit")

	// Now maxPendingBytes are pending and the host takes nothing.
	added := async(func() { s.add(entry("c")) })
	quiet(t, added, "add beyond maxPendingBytes")

	close(r.gate)
	receive(t, added, "add once the pending lines were sent")
	s.close()
	var got []string
	for _, l := range r.lines() {
		got = append(got, l[:1])
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("sent lines starting with %q, want %q", got, want)
	}
}

func TestLogSinkFailingSend(t *testing.T) {
	t.Parallel()
	r := &sendRecorder{err: errors.New("host gone")}
	s := newLogSink(r.send)
	s.add(entry("one"))
	s.add(entry("two"))
	receive(t, async(s.flush), "flush with a failing send")
	s.add(entry("three"))
	receive(t, async(s.close), "close with a failing send")
	if got, want := r.lines(), []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("send was given %q, want %q", got, want)
	}
}
