package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
)

// After a failover the new primary may lack the jobs and policies the old
// one took last. Replay makes again, as they were created, those the
// journal holds and Redis lacks, and nothing else.
func TestReplayMakesAgainTheRecentCreationsRedisLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.store = b.host(t, func(o *Options) { o.Journal = true })

	old := b.newJob(t, nil) // created 20 s before the failover: out of the journal
	*b.now += 20
	kept := b.newJob(t, nil)
	lost := b.newJob(t, nil)
	policy := b.newPolicy(t, nil)
	if made, err := b.store.Replay(ctx); err != nil || len(made) != 0 {
		t.Fatalf("Replay with nothing lost = %v, %v; want nothing made", made, err)
	}

	// The failover: the new primary lacks lost, policy and old, and its
	// queue holds kept alone.
	queue := b.keys.Jobs("DEMO")
	b.do(t, "DEL", b.keys.Stats(lost.ID), b.keys.Stats(policy.ID), b.keys.Stats(old.ID), queue, b.keys.Policies())
	ent, err := entry(kept)
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, "LPUSH", queue, ent)
	*b.now += 2

	made, err := b.store.Replay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(made); !slices.Equal(made, sorted([]string{lost.ID, policy.ID})) {
		t.Fatalf("Replay made %v, want %v (not %s, older than the journal, nor %s, kept)", made, sorted([]string{lost.ID, policy.ID}), old.ID, kept.ID)
	}
	if st, err := b.store.Get(ctx, lost.ID); err != nil || st.Status != job.Pending || st.Parameters["image"] != "demo" {
		t.Fatalf("the replayed job: %+v, %v", st, err)
	}
	if q := b.lrange(t, queue); len(q) != 2 {
		t.Errorf("queue holds %d entries, want kept's and lost's", len(q))
	}
	if ps, err := b.store.Policies(ctx); err != nil || len(ps) != 1 || ps[0].Stats.ID != policy.ID {
		t.Errorf("active policies after the replay: %v, %v", ps, err)
	}
	if _, err := b.store.Get(ctx, old.ID); err == nil {
		t.Errorf("%s, older than the journal, was made again", old.ID)
	}
	// A second replay finds nothing missing.
	if made, err := b.store.Replay(ctx); err != nil || len(made) != 0 {
		t.Fatalf("second Replay = %v, %v; want nothing made", made, err)
	}

	// A store without a journal replays nothing.
	plain := b.host(t, nil)
	b.do(t, "DEL", b.keys.Stats(lost.ID))
	if made, err := plain.Replay(ctx); err != nil || len(made) != 0 {
		t.Fatalf("Replay without a journal = %v, %v", made, err)
	}
}

// The journal keeps JournalFor of creations, at most journalMaxCount of
// them and journalMaxBytes, the newest.
func TestJournalBounds(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_700_000_000, 0)
	var j journal
	for i := range journalMaxCount + 500 {
		j.record(creation{at: at, id: fmt.Sprint(i), args: []any{"x"}})
	}
	got := j.recent(at)
	if len(got) != journalMaxCount || got[0].id != "500" || got[len(got)-1].id != fmt.Sprint(journalMaxCount+499) {
		t.Fatalf("kept %d, from %s to %s; want the newest %d", len(got), got[0].id, got[len(got)-1].id, journalMaxCount)
	}
	big := string(make([]byte, journalMaxBytes/3+1))
	for i := range 4 {
		j.record(creation{at: at, id: fmt.Sprint("big", i), args: []any{big}})
	}
	if got := j.recent(at); len(got) != 2 || got[0].id != "big2" {
		t.Fatalf("after four creations of a little over a third of the byte bound each, kept %d (first %s); want the last two", len(got), got[0].id)
	}
	later := at.Add(JournalFor + time.Second)
	j.record(creation{at: later, id: "later"})
	if got := j.recent(later); len(got) != 1 || got[0].id != "later" {
		t.Fatalf("%s later, kept %d; want only the new one", JournalFor+time.Second, len(got))
	}
	if len(j.entries)-j.head != 1 || j.bytes != 0 {
		t.Fatalf("journal holds %d entries and %d bytes after the older ones expired", len(j.entries)-j.head, j.bytes)
	}
}
