package bg

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoop(t *testing.T) {
	t.Parallel()
	var l Loop
	l.Stop() // before Start: nothing to do
	var runs, stopped atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	fn := func(ctx context.Context) {
		runs.Add(1)
		<-ctx.Done()
		stopped.Add(1)
	}
	l.Start(ctx, fn)
	l.Start(ctx, fn) // twice: one goroutine
	cancel()         // the start context's end does not stop the loop
	time.Sleep(20 * time.Millisecond)
	if stopped.Load() != 0 {
		t.Fatal("the loop stopped with the context it was started with")
	}
	l.Stop()
	l.Stop()
	if runs.Load() != 1 || stopped.Load() != 1 {
		t.Fatalf("runs %d, stopped %d; want 1 and 1, and Stop to wait for the end", runs.Load(), stopped.Load())
	}
}
