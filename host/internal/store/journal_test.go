package store

import (
	"context"
	"slices"
	"testing"

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
