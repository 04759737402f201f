package store

import (
	"context"
	"slices"
	"testing"

	"github.com/gomodule/redigo/redis"
)

// HandBack puts an entry where gocraft/work takes the next one (the
// right); WorkerPoolIDs reads the pools gocraft/work registered.
func TestHandBackAndWorkerPoolIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.do(t, "LPUSH", b.keys.Jobs("DEMO"), "older", "newer")
	if err := b.store.HandBack(ctx, "DEMO", []byte("handed back")); err != nil {
		t.Fatal(err)
	}
	if got, _ := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs("DEMO"), 0, -1)); !slices.Equal(got, []string{"newer", "older", "handed back"}) {
		t.Fatalf("queue after the hand-back: %q; want the entry taken next (right)", got)
	}
	if ids, err := b.store.WorkerPoolIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("WorkerPoolIDs with none = %v, %v", ids, err)
	}
	b.do(t, "SADD", b.keys.WorkerPools(), "p1", "p2")
	ids, err := b.store.WorkerPoolIDs(ctx)
	if slices.Sort(ids); err != nil || !slices.Equal(ids, []string{"p1", "p2"}) {
		t.Fatalf("WorkerPoolIDs = %v, %v", ids, err)
	}
}

// RequeueOrphan undoes a fetch whose worker never got the job: the entry
// goes back to the head of the queue and the slot is given back, once.
func TestRequeueOrphanUndoesAFetch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const pool, entry = "pool-1", `{"name":"DEMO","id":"g1","t":1,"args":{}}`
	b.do(t, "LPUSH", b.keys.InProgress("DEMO", pool), entry)
	b.do(t, "SET", b.keys.Lock("DEMO"), 1)
	b.do(t, "HSET", b.keys.LockInfo("DEMO"), pool, 1)
	b.do(t, "LPUSH", b.keys.Jobs("DEMO"), "waiting")
	got, err := b.store.InProgress(ctx, pool, []string{"DEMO", "OTHER"})
	if err != nil || len(got) != 1 || !slices.Equal(got["DEMO"], []string{entry}) {
		t.Fatalf("InProgress = %v, %v", got, err)
	}
	doorbell := b.subscribe(t, b.keys.Doorbell())
	for i, want := range []bool{true, false} {
		if ok, err := b.store.RequeueOrphan(ctx, pool, "DEMO", entry); err != nil || ok != want {
			t.Fatalf("RequeueOrphan #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if q, _ := redis.Strings(b.do(t, "LRANGE", b.keys.Jobs("DEMO"), 0, -1)); !slices.Equal(q, []string{"waiting", entry}) {
		t.Errorf("queue %q; want the entry at the head (right)", q)
	}
	if n, _ := redis.Int(b.do(t, "GET", b.keys.Lock("DEMO"))); n != 0 {
		t.Errorf("lock %d, want 0", n)
	}
	if n, _ := redis.Int(b.do(t, "HGET", b.keys.LockInfo("DEMO"), pool)); n != 0 {
		t.Errorf("the pool's lock_info share %d, want 0", n)
	}
	if b.exists(t, b.keys.InProgress("DEMO", pool)) {
		t.Error("the in-progress list still holds the entry")
	}
	if got := b.published(t, doorbell, b.keys.Doorbell()); !slices.Equal(got, []string{"DEMO"}) {
		t.Errorf("doorbell rang %q, want DEMO once", got)
	}
}
