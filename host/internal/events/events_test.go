package events

import (
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
)

func ev(id string, to job.Status) job.Event { return job.Event{JobID: id, To: to} }

func TestObserversSeeEveryEventInOrder(t *testing.T) {
	t.Parallel()
	b := New()
	var mu sync.Mutex
	var first, second []string
	b.Observe(func(e job.Event) { mu.Lock(); first = append(first, e.JobID+string(e.To)); mu.Unlock() })
	remove := b.Observe(func(e job.Event) { mu.Lock(); second = append(second, e.JobID); mu.Unlock() })
	b.Publish(ev("a", job.Pending), ev("a", job.Running))
	b.Publish() // nothing
	remove()
	b.Publish(ev("b", job.Success))
	if want := []string{"aPending", "aRunning", "bSuccess"}; !slices.Equal(first, want) {
		t.Fatalf("first observer saw %q, want %q", first, want)
	}
	if want := []string{"a", "a"}; !slices.Equal(second, want) {
		t.Fatalf("removed observer saw %q, want %q", second, want)
	}
}

func TestAFullSubscriptionDropsAndCounts(t *testing.T) {
	t.Parallel()
	b := New()
	s := b.Subscribe(2)
	b.Publish(ev("a", job.Pending), ev("a", job.Running), ev("a", job.Success))
	if got := (<-s.C()).To; got != job.Pending {
		t.Fatalf("first event %s", got)
	}
	if got := (<-s.C()).To; got != job.Running {
		t.Fatalf("second event %s", got)
	}
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", s.Dropped())
	}
	s.Close()
	s.Close()
	if _, open := <-s.C(); open {
		t.Fatal("C is open after Close")
	}
	b.Publish(ev("b", job.Pending)) // no send on a closed subscription
}

func TestPublishFromManyGoroutines(t *testing.T) {
	t.Parallel()
	b := New()
	s := b.Subscribe(1000)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				b.Publish(ev(string(rune('a'+i)), job.Running))
			}
		}()
	}
	wg.Wait()
	if n := len(s.C()); n != 500 || s.Dropped() != 0 {
		t.Fatalf("%d events buffered, %d dropped; want 500 and 0", n, s.Dropped())
	}
}
