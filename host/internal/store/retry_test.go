package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	for _, tc := range []struct {
		name  string
		state string
	}{
		{"FinalError", inFinalError},
		{"ErrorWaitingForRetry", inErrorRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st := b.takenJob(t)
			putIn(t, b.store, st.ID, tc.state)
			failed, _ := b.store.Get(ctx, st.ID)
			// A final Error expires; one waiting for its retry must not
			// expire before the retry.
			wantTTL := 3 * 3600
			if tc.state == inErrorRetry {
				wantTTL = -1
			}
			if ttl := b.ttl(t, b.keys.Stats(st.ID)); ttl != wantTTL {
				t.Fatalf("a failed job's TTL = %d, want %d", ttl, wantTTL)
			}
			// Another job's failed entry waits in the retry set too.
			other := fmt.Sprintf(`{"name":"DEMO","id":"%s","t":1,"args":{},"fails":1,"err":"x"}`, job.NewID())
			_, _ = b.do(t, "ZADD", b.keys.Retry(), *b.now+31, other)
			if tc.state == inErrorRetry {
				// The failure put the job's entry, with its failure, in
				// the retry set, at its retry time.
				mine := fmt.Sprintf(`{"name":"DEMO","id":"%s","t":%d,"args":{"image":"demo","n":1.5},"fails":1,"err":"boom","failed_at":%d}`,
					st.ID, st.EnqueueTime, *b.now)
				if score, _ := redis.Int64(b.do(t, "ZSCORE", b.keys.Retry(), mine)); score != *b.now+30 {
					t.Fatalf("retry set = %q, want the job's failed entry %s at %d", b.zrange(t, b.keys.Retry()), mine, *b.now+30)
				}
			}
			doorbell := b.subscribe(t, b.keys.Doorbell())
			*b.now += 40

			r, err := b.store.Retry(ctx, st)
			if err != nil || r.Outcome != Moved {
				t.Fatalf("Retry = %+v, %v; want Moved", r, err)
			}
			if r.Stats.Status != job.Pending || r.Stats.Revision <= failed.Revision || r.Stats.UpdateTime != *b.now {
				t.Fatalf("after Retry: status %s, revision %d (was %d), update_time %d; want Pending in a new revision, updated now",
					r.Stats.Status, r.Stats.Revision, failed.Revision, r.Stats.UpdateTime)
			}
			if ttl := b.ttl(t, b.keys.Stats(st.ID)); ttl != -1 {
				t.Fatalf("TTL after Retry = %d, want none", ttl)
			}
			if v, _ := redis.String(b.do(t, "HGET", b.keys.Stats(st.ID), fRetryAt)); v != "" {
				t.Fatalf("retry_at = %q after Retry, want none", v)
			}
			queue, _ := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs("DEMO"), 0, -1))
			if want := string(mustEntry(t, st)); len(queue) != 1 || queue[0] != want || strings.Contains(queue[0], "fails") {
				t.Fatalf("queue = %q, want [%s] (no failure count)", queue, want)
			}
			retry, _ := redis.Strings(b.do(t, "ZRANGE", b.keys.Retry(), 0, -1))
			if !slices.Equal(retry, []string{other}) {
				t.Fatalf("retry set = %q, want only the other job's entry", retry)
			}
			if msgs := b.published(t, doorbell, b.keys.Doorbell()); !slices.Equal(msgs, []string{"DEMO"}) {
				t.Fatalf("doorbell messages = %q, want [DEMO]", msgs)
			}
			// The new revision runs.
			if s, err := b.store.Start(ctx, st.ID); err != nil || s.Outcome != Moved || s.Stats.Revision != r.Stats.Revision {
				t.Fatalf("Start after Retry = %+v, %v; want Running in revision %d", s, err, r.Stats.Revision)
			}
		})
	}

	for _, state := range []string{inPending, inRunning, inSuccess, inStopped} {
		t.Run("Refused"+state, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st := b.newJob(t, nil)
			putIn(t, b.store, st.ID, state)
			before, _ := b.store.Get(ctx, st.ID)
			r, err := b.store.Retry(ctx, st)
			if err != nil || r.Outcome != Refused || r.Current != before.Status || r.Stats != nil {
				t.Fatalf("Retry of a %s job = %+v, %v; want Refused with Current %s", state, r, err, before.Status)
			}
			if after, _ := b.store.Get(ctx, st.ID); after.Status != before.Status || after.Revision != before.Revision {
				t.Fatalf("Retry changed a %s job to %s@%d", before.Status, after.Status, after.Revision)
			}
		})
	}

	t.Run("RefusedScheduled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.newJob(t, func(s *job.Stats) { s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+60 })
		if r, err := b.store.Retry(ctx, st); err != nil || r.Outcome != Refused || r.Current != job.Scheduled {
			t.Fatalf("Retry of a Scheduled job = %+v, %v; want Refused", r, err)
		}
		if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO"))); n != 0 {
			t.Fatalf("a refused retry queued the job")
		}
	})

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := &job.Stats{ID: job.NewID(), Name: "DEMO"}
		if r, err := b.store.Retry(ctx, st); err != nil || r.Outcome != Missing {
			t.Fatalf("Retry of a missing job = %+v, %v; want Missing", r, err)
		}
		if n, _ := redis.Int(b.do(t, "LLEN", b.keys.Jobs("DEMO"))); n != 0 {
			t.Fatalf("a retry of a missing job queued it")
		}
	})
}

// TestRetryOfADueRetryQueuesTheJobOnce: once its retry came due, the
// failed entry is in the queue (MoveDue or gocraft/work's requeuer moved
// it) while the job still waits in Error; a retry then must not queue it a
// second time, or two workers run it at once.
func TestRetryOfADueRetryQueuesTheJobOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	st := b.newJob(t, nil)
	_, _ = b.do(t, "DEL", b.keys.Jobs("DEMO"))
	putIn(t, b.store, st.ID, inErrorRetry) // its failed entry waits in the retry set
	*b.now += 30
	if moved, _, _, err := b.store.MoveDue(ctx, served, 10); err != nil || moved != 1 {
		t.Fatalf("MoveDue = %d, %v", moved, err)
	}
	if r, err := b.store.Retry(ctx, st); err != nil || r.Outcome != Moved {
		t.Fatalf("Retry = %+v, %v", r, err)
	}
	queue, _ := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs("DEMO"), 0, -1))
	if len(queue) != 1 {
		// Two workers take the two entries: the second Start sees Running
		// and starts it again in a new revision.
		first, _ := b.store.Start(ctx, st.ID)
		second, _ := b.store.Start(ctx, st.ID)
		t.Fatalf("queue holds %d entries of the job: %q; Start twice = %v then %v (revisions %s, %s)",
			len(queue), queue, first.Outcome, second.Outcome, revOf(first), revOf(second))
	}
}

func revOf(r Result) string {
	if r.Stats == nil {
		return "-"
	}
	return strconv.FormatInt(r.Stats.Revision, 10)
}
