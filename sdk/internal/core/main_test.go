package core

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait of these tests for something that must happen.
const waitLimit = 10 * time.Second

// quietPeriod is how long a test watches for something that must not happen
// (a blocked call returning too early). A correct sdk never does it, so this
// only decides how likely a broken one is caught.
const quietPeriod = 50 * time.Millisecond

// receive returns the next value of ch, failing the test after waitLimit.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
	var zero T
	return zero
}

// quiet fails the test if ch delivers within quietPeriod.
func quiet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s happened too early", what)
	case <-time.After(quietPeriod):
	}
}

// async runs fn in a goroutine; the channel is closed when fn returns.
func async(fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	return done
}
