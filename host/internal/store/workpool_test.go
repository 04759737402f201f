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
