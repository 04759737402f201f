package hook

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/backoff"
)

func TestBreaker(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	b := newBreaker(3, 100, backoff.Policy{Base: time.Second, Max: time.Minute})
	b.now = func() time.Time { return now }

	const e = "http://core:8080"
	for i := 1; i <= 2; i++ {
		b.failure(e)
		if _, open := b.open(e); open {
			t.Fatalf("open after %d failures, threshold 3", i)
		}
	}
	b.failure(e)
	if wait, open := b.open(e); !open || wait != time.Second {
		t.Fatalf("after 3 failures: open %v for %v, want 1s", open, wait)
	}
	b.failure(e)
	if wait, _ := b.open(e); wait != 2*time.Second {
		t.Fatalf("after 4 failures: skipped for %v, want 2s (doubling)", wait)
	}
	now = now.Add(3 * time.Second)
	if _, open := b.open(e); open {
		t.Fatal("still open after its wait")
	}
	b.success(e)
	if b.size() != 0 {
		t.Fatalf("a success leaves %d endpoints remembered", b.size())
	}

	// However many endpoints fail, at most limit are remembered.
	for i := 0; i < 5000; i++ {
		b.failure(fmt.Sprintf("http://dead-%d:80", i))
	}
	if n := b.size(); n > 100 {
		t.Fatalf("%d endpoints remembered, limit 100", n)
	}
}
