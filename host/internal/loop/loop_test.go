package loop

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/testkit/fakeclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitLimit = 10 * time.Second

// setup starts a loop on a fake clock whose runs are reported on runs and
// ask for wait before the next one.
func setup(t *testing.T, first, wait time.Duration) (*Loop, *fakeclock.Clock, chan int) {
	t.Helper()
	clk := fakeclock.New(time.Unix(1_700_000_000, 0))
	runs := make(chan int, 100)
	var n atomic.Int32
	l := New(Options{First: first, Clock: clk, Run: func(context.Context) time.Duration {
		runs <- int(n.Add(1))
		return wait
	}})
	l.Start(context.Background())
	t.Cleanup(l.Stop)
	return l, clk, runs
}

func next(t *testing.T, runs chan int, want int) {
	t.Helper()
	select {
	case got := <-runs:
		if got != want {
			t.Fatalf("run %d, want %d", got, want)
		}
	case <-time.After(waitLimit):
		t.Fatalf("run %d never came", want)
	}
}

func none(t *testing.T, runs chan int) {
	t.Helper()
	select {
	case got := <-runs:
		t.Fatalf("unexpected run %d", got)
	default:
	}
}

// asleep waits until the loop waits on its timer again.
func asleep(t *testing.T, clk *fakeclock.Clock) {
	t.Helper()
	if !clk.WaitTimers(1, waitLimit) {
		t.Fatal("the loop never went back to sleep")
	}
}

func TestRunsAtOnceThenAfterTheWaitItAsks(t *testing.T) {
	t.Parallel()
	_, clk, runs := setup(t, 0, time.Minute)
	next(t, runs, 1)
	asleep(t, clk)
	clk.Advance(59 * time.Second)
	none(t, runs)
	clk.Advance(time.Second)
	next(t, runs, 2)
}

func TestFirstDelaysTheFirstRun(t *testing.T) {
	t.Parallel()
	_, clk, runs := setup(t, time.Hour, time.Minute)
	asleep(t, clk)
	none(t, runs)
	clk.Advance(time.Hour)
	next(t, runs, 1)
}

func TestKickRunsNowAndKicksFold(t *testing.T) {
	t.Parallel()
	l, clk, runs := setup(t, time.Hour, time.Hour)
	asleep(t, clk)
	l.Kick()
	next(t, runs, 1)
	asleep(t, clk)
	// Kicks while the loop sleeps fold into one run.
	l.Kick()
	l.Kick()
	l.Kick()
	next(t, runs, 2)
	asleep(t, clk)
	select {
	case got := <-runs:
		// At most one more run for kicks that raced with run 2.
		if got != 3 {
			t.Fatalf("run %d", got)
		}
	default:
	}
	none(t, runs)
}

func TestStopEndsTheRunContextAndIsSafeTwice(t *testing.T) {
	t.Parallel()
	var zero Loop
	zero.Stop() // the zero value before Start: nothing to do
	runCtx := make(chan context.Context, 1)
	ended := make(chan struct{})
	l := New(Options{Run: func(ctx context.Context) time.Duration {
		runCtx <- ctx
		<-ctx.Done()
		close(ended)
		return 0
	}})
	ctx, cancel := context.WithCancel(context.Background())
	l.Start(ctx)
	l.Start(ctx) // twice: one goroutine
	rc := <-runCtx
	// The start context's end does not reach the runs (cancellation of a
	// derived context would be synchronous).
	cancel()
	if rc.Err() != nil {
		t.Fatal("the run's context ended with the context the loop was started with")
	}
	l.Stop()
	select {
	case <-ended:
	default:
		t.Fatal("Stop returned before the run ended")
	}
	l.Stop()
}
