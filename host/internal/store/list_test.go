package store

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

func TestListScheduledPagesSoonestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	// Created out of run-time order; a Generic job is not listed.
	byRunAt := map[int64]string{}
	for _, delay := range []int64{300, 60, 500, 120, 30} {
		st := b.newJob(t, func(s *job.Stats) { s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+delay })
		byRunAt[delay] = st.ID
	}
	b.newJob(t, nil)
	want := []string{byRunAt[30], byRunAt[60], byRunAt[120], byRunAt[300], byRunAt[500]}

	for _, tc := range []struct {
		name       string
		page, size int
		want       []string
	}{
		{"FirstPage", 1, 2, want[0:2]},
		{"SecondPage", 2, 2, want[2:4]},
		{"LastPartialPage", 3, 2, want[4:]},
		{"PastTheEnd", 4, 2, nil},
		{"AllInOnePage", 1, 10, want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, total, err := b.store.ListScheduled(ctx, tc.page, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if total != 5 {
				t.Fatalf("total = %d, want 5", total)
			}
			if ids := ids(got); !slices.Equal(ids, tc.want) {
				t.Fatalf("page %d of %d = %q, want %q", tc.page, tc.size, ids, tc.want)
			}
			for _, st := range got {
				if st.Status != job.Scheduled || st.RunAt <= *b.now {
					t.Fatalf("listed %+v", st)
				}
			}
		})
	}
}

// walk lists every page of f with size, failing if a page before the last
// is not full, and returns the IDs in order.
func walk(t *testing.T, s *Store, f Filter, size int) []string {
	t.Helper()
	var out []string
	var cursor int64
	for pages := 1; ; pages++ {
		page, next, err := s.List(context.Background(), f, cursor, size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids(page)...)
		if next == 0 {
			return out
		}
		if len(page) != size {
			t.Fatalf("page %d has %d jobs, want %d (a page is full unless it is the last)", pages, len(page), size)
		}
		if pages > 10_000 {
			t.Fatalf("the listing has not ended after %d pages", pages)
		}
		cursor = next
	}
}

func TestListPagesEveryJobOnceNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Jobs of two names, kinds and statuses, many created in the same
	// millisecond (the fake clock): ties must page right too.
	var all []*job.Stats
	for i := range 23 {
		name := "DEMO"
		if i%3 == 0 {
			name = "SCAN"
		}
		mutate := func(s *job.Stats) { s.Name = name }
		if i%4 == 0 {
			mutate = func(s *job.Stats) {
				s.Name, s.Kind, s.Status, s.RunAt = name, job.KindScheduled, job.Scheduled, *b.now+60
			}
		}
		all = append(all, b.newJob(t, mutate))
		if i%5 == 0 {
			*b.now++
		}
	}
	p := b.newPolicy(t, nil)
	ex := fire(t, b.store, p, *b.now+60)
	// Move some on: the index follows the status.
	putIn(t, b.store, all[1].ID, inSuccess)
	putIn(t, b.store, all[2].ID, inRunning)

	want := map[string]bool{p.ID: true, ex: true}
	for _, st := range all {
		want[st.ID] = true
	}
	for _, size := range []int{1, 4, 10, 100} {
		got := walk(t, b.store, Filter{}, size)
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				t.Fatalf("size %d: job %s listed twice: %q", size, id, got)
			}
			seen[id] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("size %d: listed %d jobs, want %d", size, len(seen), len(want))
		}
		if size == 100 {
			// Newest submission first.
			for i := 1; i < len(got); i++ {
				a, _ := b.store.Get(context.Background(), got[i-1])
				c, _ := b.store.Get(context.Background(), got[i])
				if a.EnqueueTime < c.EnqueueTime {
					t.Fatalf("%s (submitted %d) is listed before %s (submitted %d)", a.ID, a.EnqueueTime, c.ID, c.EnqueueTime)
				}
			}
		}
	}

	for _, tc := range []struct {
		name string
		f    Filter
		keep func(*job.Stats) bool
	}{
		{"Kind", Filter{Kind: job.Generic}, func(s *job.Stats) bool { return s.Kind == job.Generic }},
		{"Status", Filter{Status: job.Scheduled}, func(s *job.Stats) bool { return s.Status == job.Scheduled }},
		{"Name", Filter{Names: []string{"SCAN"}}, func(s *job.Stats) bool { return s.Name == "SCAN" }},
		{"All", Filter{Kind: job.Generic, Status: job.Running, Names: []string{"DEMO"}}, func(s *job.Stats) bool {
			return s.Kind == job.Generic && s.Status == job.Running && s.Name == "DEMO"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantIDs := map[string]bool{}
			for id := range want {
				if st, _ := b.store.Get(context.Background(), id); tc.keep(st) {
					wantIDs[id] = true
				}
			}
			got := walk(t, b.store, tc.f, 3)
			if len(got) != len(wantIDs) || len(wantIDs) == 0 {
				t.Fatalf("listed %d jobs %q, want %d", len(got), got, len(wantIDs))
			}
			for _, id := range got {
				if !wantIDs[id] {
					t.Fatalf("listed %s, which the filter does not select", id)
				}
			}
		})
	}
}

func TestListSkipsExpiredStatsAndStillFillsThePage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var kept []string
	for i := range 12 {
		st := b.newJob(t, nil)
		putIn(t, b.store, st.ID, inSuccess)
		if i%2 == 0 {
			_, _ = b.do(t, "DEL", b.keys.Stats(st.ID)) // as if it expired
		} else {
			kept = append(kept, st.ID)
		}
		*b.now++
	}
	got := walk(t, b.store, Filter{}, 4)
	if len(got) != len(kept) {
		t.Fatalf("listed %q, want the %d jobs that still have stats", got, len(kept))
	}
	// The listing dropped the dead entries from the index on its way.
	if n, _ := redis.Int(b.do(t, "ZCARD", b.keys.Index(job.Generic, job.Success, "DEMO"))); n != len(kept) {
		t.Fatalf("the index holds %d entries after the listing, want %d", n, len(kept))
	}
}

func TestPruneIndexDropsEntriesOfExpiredStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	alive := 0
	for i := range 450 {
		st := b.newJob(t, nil)
		putIn(t, b.store, st.ID, inSuccess)
		if i < 400 {
			_, _ = b.do(t, "DEL", b.keys.Stats(st.ID)) // the oldest expired
		} else {
			alive++
		}
	}
	running := b.newJob(t, nil)
	putIn(t, b.store, running.ID, inRunning)
	n, err := b.store.PruneIndex(ctx, 10_000)
	if err != nil || n != 400 {
		t.Fatalf("PruneIndex = %d, %v; want 400", n, err)
	}
	if c, _ := redis.Int(b.do(t, "ZCARD", b.keys.Index(job.Generic, job.Success, "DEMO"))); c != alive {
		t.Fatalf("the Success index holds %d entries, want %d", c, alive)
	}
	if c, _ := redis.Int(b.do(t, "ZCARD", b.keys.Index(job.Generic, job.Running, "DEMO"))); c != 1 {
		t.Fatalf("the Running index holds %d entries, want 1", c)
	}
	if n, err := b.store.PruneIndex(ctx, 10_000); err != nil || n != 0 {
		t.Fatalf("a second PruneIndex = %d, %v; want 0", n, err)
	}
}

func TestExecutionsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	p := b.newPolicy(t, nil)
	var want []string
	for _, at := range []int64{60, 120, 180, 240} {
		want = append([]string{fire(t, b.store, p, *b.now+at)}, want...)
	}
	got, err := b.store.Executions(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("Executions = %q, want newest first %q", ids(got), want)
	}
	// An execution whose stats expired is left out.
	_, _ = b.do(t, "DEL", b.keys.Stats(want[1]))
	got, err = b.store.Executions(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{want[0], want[2], want[3]}; !slices.Equal(ids(got), w) {
		t.Fatalf("Executions without expired stats = %q, want %q", ids(got), w)
	}
	if got, err := b.store.Executions(ctx, job.NewID()); err != nil || len(got) != 0 {
		t.Fatalf("Executions of a job without any = %q, %v", ids(got), err)
	}
}

// TestSubJobsListNewestFirst: a parent's sub-jobs, created a second apart,
// are listed newest first. Their IDs are chosen so that their order is the
// reverse of their creation order, which ties in score would show.
func TestSubJobsListNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	parent := b.newJob(t, nil)
	var want []string
	for _, c := range []string{"c", "b", "a"} {
		*b.now++
		st := b.newJob(t, func(s *job.Stats) {
			s.ID, s.RefLink, s.UpstreamJobID = strings.Repeat(c, 24), job.RefLink(strings.Repeat(c, 24)), parent.ID
		})
		want = append([]string{st.ID}, want...)
	}
	got, err := b.store.Executions(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("Executions(parent) = %q, want newest first %q", ids(got), want)
	}
}

// A page is never empty while the listing goes on: when more entries than
// a few rounds can clear have lost their stats, List keeps reading.
func TestListNeverAnswersAnEmptyPageWithACursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	old := b.newJob(t, nil)
	putIn(t, b.store, old.ID, inSuccess)
	*b.now++
	for range 3 * maxListRounds * 2 {
		st := b.newJob(t, nil)
		putIn(t, b.store, st.ID, inSuccess)
		_, _ = b.do(t, "DEL", b.keys.Stats(st.ID)) // as if it expired
		*b.now++
	}
	jobs, next, err := b.store.List(ctx, Filter{}, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) == 0 && next != 0 {
		t.Fatalf("an empty page with the cursor %d", next)
	}
	if len(jobs) != 1 || jobs[0].ID != old.ID || next != 0 {
		t.Fatalf("List = %d jobs, next %d; want the one job with stats and the end", len(jobs), next)
	}
}
