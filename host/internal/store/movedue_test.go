package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// workEntry is an entry as gocraft/work may write it; the odd spellings
// (key order, 1.50, \u003c) would not survive a decode and re-encode.
func workEntry(name, id string, extra string) string {
	return fmt.Sprintf(`{"name":"%s","id":"%s","t":1700000000,"args":{"z":1.50,"a":"\u003cx\u003e"}%s}`, name, id, extra)
}

func (b *bundle) zadd(t *testing.T, key string, score int64, members ...string) {
	t.Helper()
	for _, m := range members {
		_, _ = b.do(t, "ZADD", key, score, m)
	}
}

func (b *bundle) lrange(t *testing.T, key string) []string {
	t.Helper()
	v, _ := redis.Strings(b.do(t, "LRANGE", key, 0, -1))
	slices.Sort(v)
	return v
}

func (b *bundle) zrange(t *testing.T, key string) []string {
	t.Helper()
	v, _ := redis.Strings(b.do(t, "ZRANGE", key, 0, -1))
	return v
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// served are the job names the tests' hosts serve.
var served = []string{"DEMO", "SCAN"}

func TestMoveDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("LeavesEntriesOfNamesNotServed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		now := *b.now
		other := workEntry("OTHER", "o1", "")
		mine := workEntry("DEMO", "d1", "")
		b.zadd(t, b.keys.Scheduled(), now-5, other, mine)
		b.zadd(t, b.keys.Scheduled(), now+7, workEntry("DEMO", "d2", ""))
		moved, dropped, next, err := b.store.MoveDue(ctx, served, 100)
		if err != nil || moved != 1 || dropped != 0 || next != now+7 {
			t.Fatalf("MoveDue = %d moved, %d dropped, next %d, %v; want 1, 0, %d (not the entry left behind)", moved, dropped, next, err, now+7)
		}
		if got := b.lrange(t, b.keys.Jobs("DEMO")); !slices.Equal(got, []string{mine}) {
			t.Fatalf("DEMO queue = %q", got)
		}
		if got := b.lrange(t, b.keys.Jobs("OTHER")); len(got) != 0 {
			t.Fatalf("an entry of a name this host does not serve was queued: %q", got)
		}
		if got := b.zrange(t, b.keys.Scheduled()); len(got) != 2 || !slices.Contains(got, other) {
			t.Fatalf("scheduled set = %q, want the other name's entry kept for its host", got)
		}
	})

	t.Run("MovesDueEntriesWithTheSameBytes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		now := *b.now
		early := workEntry("DEMO", "s1", "")
		atNow := workEntry("SCAN", "s2", "")
		later := workEntry("DEMO", "s3", "")
		failed := workEntry("DEMO", "r1", `,"fails":2,"err":"boom","failed_at":1700000000`)
		notYet := workEntry("DEMO", "r2", `,"fails":1`)
		b.zadd(t, b.keys.Scheduled(), now-10, early)
		b.zadd(t, b.keys.Scheduled(), now, atNow)
		b.zadd(t, b.keys.Scheduled(), now+1, later)
		b.zadd(t, b.keys.Retry(), now-5, failed)
		b.zadd(t, b.keys.Retry(), now+30, notYet)
		doorbell := b.subscribe(t, b.keys.Doorbell())

		moved, dropped, next, err := b.store.MoveDue(ctx, served, 100)
		if err != nil || moved != 3 || dropped != 0 || next != now+1 {
			t.Fatalf("MoveDue = %d moved, %d dropped, next %d, %v; want 3, 0, %d", moved, dropped, next, err, now+1)
		}
		ns := b.namespace()
		if got, want := b.lrange(t, "{"+ns+"}:jobs:DEMO"), sorted([]string{early, failed}); !slices.Equal(got, want) {
			t.Fatalf("DEMO queue = %q, want %q", got, want)
		}
		if got := b.lrange(t, "{"+ns+"}:jobs:SCAN"); !slices.Equal(got, []string{atNow}) {
			t.Fatalf("SCAN queue = %q, want [%s]", got, atNow)
		}
		if got := b.zrange(t, b.keys.Scheduled()); !slices.Equal(got, []string{later}) {
			t.Fatalf("scheduled set = %q, want only the entry not yet due", got)
		}
		if got := b.zrange(t, b.keys.Retry()); !slices.Equal(got, []string{notYet}) {
			t.Fatalf("retry set = %q, want only the entry not yet due", got)
		}
		if got := sorted(b.published(t, doorbell, b.keys.Doorbell())); !slices.Equal(got, []string{"DEMO", "DEMO", "SCAN"}) {
			t.Fatalf("doorbell messages = %q, want one job name per moved entry", got)
		}
	})

	t.Run("DropsMalformedEntries", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		good := workEntry("DEMO", "ok", "")
		b.zadd(t, b.keys.Scheduled(), *b.now-1, "not JSON", `{"id":"no-name","args":{}}`, `{"name":7,"id":"x"}`, `[1,2]`, good)
		b.zadd(t, b.keys.Retry(), *b.now-1, `"a string"`, `{"name":`)
		doorbell := b.subscribe(t, b.keys.Doorbell())

		moved, dropped, next, err := b.store.MoveDue(ctx, served, 100)
		if err != nil || moved != 1 || dropped != 6 || next != 0 {
			t.Fatalf("MoveDue = %d moved, %d dropped, next %d, %v; want 1, 6, 0", moved, dropped, next, err)
		}
		for _, key := range []string{b.keys.Scheduled(), b.keys.Retry()} {
			if got := b.zrange(t, key); len(got) != 0 {
				t.Fatalf("%s still holds %q", key, got)
			}
		}
		if got := b.lrange(t, b.keys.Jobs("DEMO")); !slices.Equal(got, []string{good}) {
			t.Fatalf("queue = %q, want [%s]", got, good)
		}
		if got := b.published(t, doorbell, b.keys.Doorbell()); !slices.Equal(got, []string{"DEMO"}) {
			t.Fatalf("doorbell messages = %q, want [DEMO]", got)
		}
	})

	for _, tc := range []struct {
		name              string
		scheduled, retry  []int64 // scores, relative to now
		wantNext          int64   // relative to now; 0: none
		wantNoneScheduled bool
	}{
		{name: "BothEmpty", wantNoneScheduled: true},
		{name: "OnlyScheduled", scheduled: []int64{90, 60}, wantNext: 60},
		{name: "OnlyRetry", retry: []int64{30}, wantNext: 30},
		{name: "SoonestOfBoth", scheduled: []int64{60}, retry: []int64{45, 300}, wantNext: 45},
		{name: "SoonestOfBothInScheduled", scheduled: []int64{20}, retry: []int64{45}, wantNext: 20},
	} {
		t.Run("Next"+tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			for i, at := range tc.scheduled {
				b.zadd(t, b.keys.Scheduled(), *b.now+at, workEntry("DEMO", fmt.Sprint("s", i), ""))
			}
			for i, at := range tc.retry {
				b.zadd(t, b.keys.Retry(), *b.now+at, workEntry("DEMO", fmt.Sprint("r", i), ""))
			}
			moved, dropped, next, err := b.store.MoveDue(ctx, served, 100)
			want := *b.now + tc.wantNext
			if tc.wantNoneScheduled {
				want = 0
			}
			if err != nil || moved != 0 || dropped != 0 || next != want {
				t.Fatalf("MoveDue = %d moved, %d dropped, next %d, %v; want 0, 0, %d", moved, dropped, next, err, want)
			}
		})
	}

	for _, set := range []string{"Scheduled", "Retry"} {
		t.Run("RespectsTheLimitIn"+set, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			key := b.keys.Scheduled()
			if set == "Retry" {
				key = b.keys.Retry()
			}
			var entries []string
			for i := range 5 {
				e := workEntry("DEMO", fmt.Sprint("e", i), "")
				entries = append(entries, e)
				b.zadd(t, key, *b.now-5+int64(i), e)
			}
			moved, dropped, next, err := b.store.MoveDue(ctx, served, 3)
			if err != nil || moved != 3 || dropped != 0 || next != *b.now-2 {
				t.Fatalf("MoveDue(3) = %d moved, %d dropped, next %d, %v; want 3, 0, %d", moved, dropped, next, err, *b.now-2)
			}
			if got := b.zrange(t, key); !slices.Equal(got, entries[3:]) {
				t.Fatalf("left in the set: %q, want the 2 latest", got)
			}
			if got := b.lrange(t, b.keys.Jobs("DEMO")); !slices.Equal(got, sorted(entries[:3])) {
				t.Fatalf("queue = %q, want the 3 soonest", got)
			}
			moved, _, next, err = b.store.MoveDue(ctx, served, 3)
			if err != nil || moved != 2 || next != 0 {
				t.Fatalf("second MoveDue(3) = %d moved, next %d, %v; want 2, 0", moved, next, err)
			}
		})
	}

	t.Run("ConcurrentCallersMoveEachEntryOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const n = 300
		var want []string
		for i := range n {
			e := workEntry("DEMO", fmt.Sprint("c", i), "")
			want = append(want, e)
			key := b.keys.Scheduled()
			if i%3 == 0 {
				key = b.keys.Retry()
			}
			b.zadd(t, key, *b.now-int64(i%17), e)
		}
		hosts := []*Store{b.store, b.host(t, nil), b.host(t, nil), b.host(t, nil)}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
			errs  []error
			start = make(chan struct{})
		)
		for _, s := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					moved, dropped, _, err := s.MoveDue(ctx, served, 7)
					mu.Lock()
					total += moved
					if err != nil || dropped != 0 {
						errs = append(errs, fmt.Errorf("MoveDue: dropped %d, %v", dropped, err))
					}
					mu.Unlock()
					if moved == 0 || err != nil {
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		if total != n {
			t.Fatalf("moved %d entries in all, want %d", total, n)
		}
		if got := b.lrange(t, b.keys.Jobs("DEMO")); !slices.Equal(got, sorted(want)) {
			t.Fatalf("queue holds %d entries (%d distinct), want each of the %d once", len(got), len(slices.Compact(slices.Clone(got))), n)
		}
	})
}

func TestCreateRingsTheRightChannel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		mutate              func(b *bundle) func(*job.Stats)
		wantTimer, wantBell func(b *bundle) []string
	}{
		{"ScheduledPublishesItsRunTime",
			func(b *bundle) func(*job.Stats) {
				return func(s *job.Stats) { s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+90 }
			},
			func(b *bundle) []string { return []string{fmt.Sprint(*b.now + 90)} },
			func(*bundle) []string { return nil }},
		{"GenericRingsTheDoorbell",
			func(*bundle) func(*job.Stats) { return nil },
			func(*bundle) []string { return nil },
			func(*bundle) []string { return []string{"DEMO"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			timer := b.subscribe(t, b.keys.Timer())
			bell := b.subscribe(t, b.keys.Doorbell())
			b.newJob(t, tc.mutate(b))
			if got, want := b.published(t, timer, b.keys.Timer()), tc.wantTimer(b); !slices.Equal(got, want) {
				t.Fatalf("timer messages = %q, want %q", got, want)
			}
			if got, want := b.published(t, bell, b.keys.Doorbell()), tc.wantBell(b); !slices.Equal(got, want) {
				t.Fatalf("doorbell messages = %q, want %q", got, want)
			}
		})
	}
}
