package store

import (
	"context"
	"slices"
	"strings"
	"testing"

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

func TestScanCoversEveryJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	created := map[string]bool{}
	for i := range 25 {
		mutate := func(*job.Stats) {}
		if i%5 == 0 {
			mutate = func(s *job.Stats) { s.Kind, s.Status, s.RunAt = job.KindScheduled, job.Scheduled, *b.now+60 }
		}
		created[b.newJob(t, mutate).ID] = true
	}
	p := b.newPolicy(t, nil)
	created[p.ID] = true
	created[fire(t, b.store, p, *b.now+60)] = true

	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page, next, err := b.store.Scan(ctx, cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page {
			if !created[st.ID] {
				t.Fatalf("Scan returned %s, which this test did not create", st.ID)
			}
			seen[st.ID] = true
		}
		if pages++; pages > 1_000_000 {
			t.Fatalf("Scan has not ended after %d pages", pages)
		}
		if next == "0" {
			break
		}
		if next == "" {
			t.Fatalf("Scan returned an empty cursor after page %d", pages)
		}
		cursor = next
	}
	var missed []string
	for id := range created {
		if !seen[id] {
			missed = append(missed, id)
		}
	}
	if len(missed) != 0 {
		t.Fatalf("the scan (%d pages) missed %d of %d jobs: %q", pages, len(missed), len(created), missed)
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
