package daemon_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// totalCountOf reads the Total-Count header (-1 when absent).
func totalCountOf(t *testing.T, r *hosttest.Response) int {
	t.Helper()
	v := r.Header.Get("Total-Count")
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("Total-Count %q", v)
	}
	return n
}

func idsOf(list []*job.Stats) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

func TestListWalksTheCursorOverEveryJob(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	want := map[string]bool{}
	for i := 0; i < 30; i++ {
		want[h.Submit(t, "NOOP", nil, nil).ID] = true
	}
	for i := 0; i < 5; i++ {
		want[h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60}).ID] = true
	}
	want[h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "0 0 0 1 1 *"}).ID] = true

	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		pages++
		if pages > 100000 {
			t.Fatal("the cursor never comes back to 0")
		}
		path := "/api/v1/jobs?page_size=10"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		list, r := listPage(t, h, path)
		if r.Header.Get("Total-Count") != "" {
			t.Fatalf("a cursor listing has Total-Count %q", r.Header.Get("Total-Count"))
		}
		for _, s := range list {
			seen[s.ID] = true
		}
		cursor = r.Header.Get("Next-Cursor")
		if cursor == "" {
			t.Fatalf("page %d has no Next-Cursor", pages)
		}
		if cursor == "0" {
			break
		}
	}
	t.Logf("walked %d pages", pages)
	for id := range want {
		if !seen[id] {
			t.Errorf("job %s was not listed", id)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %d jobs, submitted %d", len(seen), len(want))
	}
	// A cursor must be digits.
	if body := errorOf(t, h.Do(t, http.MethodGet, "/api/v1/jobs?cursor=abc", hosttest.Auth, nil), http.StatusBadRequest); body.Code != 10013 {
		t.Fatalf("bad cursor: %+v", body)
	}
}

func TestListScheduledPages(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	var want []string // soonest first
	for i := 1; i <= 7; i++ {
		want = append(want, h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 100 * i}).ID)
	}
	h.Submit(t, "NOOP", nil, nil) // not scheduled: never listed
	var got []string
	for page, size := range []int{3, 3, 1} {
		list, r := listPage(t, h, fmt.Sprintf("/api/v1/jobs?kind=Scheduled&page_number=%d&page_size=3", page+1))
		if len(list) != size || totalCountOf(t, r) != 7 {
			t.Fatalf("page %d: %d jobs, Total-Count %q: %s", page+1, len(list), r.Header.Get("Total-Count"), r.Body)
		}
		for _, s := range list {
			if s.Status != job.Scheduled || s.Kind != job.KindScheduled {
				t.Fatalf("listed as scheduled: %+v", s)
			}
		}
		got = append(got, idsOf(list)...)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages list %v, want %v (soonest first)", got, want)
	}
	list, r := listPage(t, h, "/api/v1/jobs?kind=Scheduled&page_number=4&page_size=3")
	if len(list) != 0 || string(r.Body) != "[]" || totalCountOf(t, r) != 7 {
		t.Fatalf("page beyond the end: %s, Total-Count %q", r.Body, r.Header.Get("Total-Count"))
	}
	// Stopping one takes it out of the listing.
	if r := h.Action(t, want[0], "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	list, r = listPage(t, h, "/api/v1/jobs?kind=Scheduled")
	if strings.Join(idsOf(list), ",") != strings.Join(want[1:], ",") || totalCountOf(t, r) != 6 {
		t.Fatalf("after a stop: %v (Total-Count %d), want %v", idsOf(list), totalCountOf(t, r), want[1:])
	}
}

func TestListPeriodicPages(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	var want []string
	for i := 0; i < 3; i++ {
		want = append(want, h.Submit(t, "CLOCK", map[string]any{"n": float64(i)}, map[string]any{"kind": "Periodic", "cron_spec": "0 0 0 1 1 *"}).ID)
	}
	seen := map[string]bool{}
	for page := 1; page <= 3; page++ {
		list, r := listPage(t, h, fmt.Sprintf("/api/v1/jobs?kind=Periodic&page_number=%d&page_size=1", page))
		if len(list) != 1 || totalCountOf(t, r) != 3 || list[0].Kind != job.Periodic || list[0].Status != job.Scheduled {
			t.Fatalf("page %d: %s (Total-Count %q)", page, r.Body, r.Header.Get("Total-Count"))
		}
		seen[list[0].ID] = true
	}
	for _, id := range want {
		if !seen[id] {
			t.Errorf("policy %s was not listed", id)
		}
	}
	if list, r := listPage(t, h, "/api/v1/jobs?kind=Periodic&page_number=4&page_size=1"); len(list) != 0 || totalCountOf(t, r) != 3 {
		t.Fatalf("page beyond the end: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}
}

func TestExecutionsOfAParentListItsSubJobs(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	launched := func(s *job.Stats) bool { return s.Status == job.Success && strings.HasPrefix(s.CheckIn, "launched ") }

	parent := h.Submit(t, "SPAWN", map[string]any{"name": "NOOP"}, nil)
	sub := strings.TrimPrefix(h.Wait(t, parent.ID, wait, "a sub-job", launched).CheckIn, "launched ")
	h.WaitStatus(t, sub, job.Success, wait)
	list, r := listPage(t, h, "/api/v1/jobs/"+parent.ID+"/executions")
	if len(list) != 1 || totalCountOf(t, r) != 1 || list[0].ID != sub || list[0].UpstreamJobID != parent.ID || list[0].Name != "NOOP" {
		t.Fatalf("executions of the parent: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}
	if list, r := listPage(t, h, "/api/v1/jobs/"+parent.ID+"/executions?non_dead_only=true"); len(list) != 0 || totalCountOf(t, r) != 0 {
		t.Fatalf("live executions of the parent: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}

	// A scheduled sub-job is live until it is stopped.
	later := h.Submit(t, "SPAWN", map[string]any{"name": "DEMO", "parameters": demo(nil), "schedule_delay": 60}, nil)
	sub = strings.TrimPrefix(h.Wait(t, later.ID, wait, "a sub-job", launched).CheckIn, "launched ")
	list, r = listPage(t, h, "/api/v1/jobs/"+later.ID+"/executions?non_dead_only=true")
	if len(list) != 1 || totalCountOf(t, r) != 1 || list[0].ID != sub || list[0].Status != job.Scheduled || list[0].UpstreamJobID != later.ID {
		t.Fatalf("live executions of the parent: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}
	if r := h.Action(t, sub, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	if list, r := listPage(t, h, "/api/v1/jobs/"+later.ID+"/executions?non_dead_only=true"); len(list) != 0 || totalCountOf(t, r) != 0 {
		t.Fatalf("live executions after the stop: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}

	// A job without sub-jobs has no executions: 400; an unknown one 404.
	plain := h.WaitStatus(t, h.Submit(t, "NOOP", nil, nil).ID, job.Success, wait)
	if body := errorOf(t, h.Do(t, http.MethodGet, "/api/v1/jobs/"+plain.ID+"/executions", hosttest.Auth, nil), http.StatusBadRequest); body.Code != 10013 || !strings.Contains(body.Details, plain.ID) {
		t.Fatalf("executions of a plain job: %+v", body)
	}
	if body := errorOf(t, h.Do(t, http.MethodGet, "/api/v1/jobs/"+job.NewID()+"/executions", hosttest.Auth, nil), http.StatusNotFound); body.Code != 10010 {
		t.Fatalf("executions of an unknown job: %+v", body)
	}
}

func TestExecutionsOfAPolicy(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	policy := h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "* * * * * *"})
	all := "/api/v1/jobs/" + policy.ID + "/executions?page_size=1000"
	ended := func(list []*job.Stats) int {
		n := 0
		for _, s := range list {
			if s.Status.Final() {
				n++
			}
		}
		return n
	}
	pollUntil(t, wait, "two ended executions", func() bool { list, _ := listPage(t, h, all); return ended(list) >= 2 })

	// While the policy runs: non_dead_only lists only the executions that
	// have not ended, the scheduled ones ahead among them.
	live, r := listPage(t, h, all+"&non_dead_only=true")
	if ended(live) != 0 || len(live) < 20 || totalCountOf(t, r) != len(live) {
		t.Fatalf("live executions: %d, %d of them ended, Total-Count %q", len(live), ended(live), r.Header.Get("Total-Count"))
	}
	if list, _ := listPage(t, h, all+"&non_dead_only=false"); ended(list) < 2 {
		t.Fatalf("non_dead_only=false lists %d ended executions", ended(list))
	}

	// Once stopped, the set no longer changes: page through it.
	if r := h.Action(t, policy.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	var full []*job.Stats
	pollUntil(t, wait, "every execution to end", func() bool {
		full, r = listPage(t, h, all)
		return ended(full) == len(full)
	})
	n := len(full)
	if totalCountOf(t, r) != n || n < 20 {
		t.Fatalf("%d executions, Total-Count %q", n, r.Header.Get("Total-Count"))
	}
	for i, s := range full {
		if s.UpstreamJobID != policy.ID || s.ID != job.ExecutionID(policy.ID, s.RunAt) || (i > 0 && s.RunAt >= full[i-1].RunAt) {
			t.Fatalf("execution %d: %+v (want newest first)", i, s)
		}
	}
	var paged []string
	for page := 1; ; page++ {
		list, r := listPage(t, h, fmt.Sprintf("/api/v1/jobs/%s/executions?page_size=4&page_number=%d", policy.ID, page))
		if totalCountOf(t, r) != n {
			t.Fatalf("page %d: Total-Count %q, want %d", page, r.Header.Get("Total-Count"), n)
		}
		if len(list) == 0 {
			if string(r.Body) != "[]" || page != (n+3)/4+1 {
				t.Fatalf("page %d: %s", page, r.Body)
			}
			break
		}
		paged = append(paged, idsOf(list)...)
	}
	if strings.Join(paged, ",") != strings.Join(idsOf(full), ",") {
		t.Fatalf("the pages list %v, the whole listing %v", paged, idsOf(full))
	}
	if list, r := listPage(t, h, all+"&non_dead_only=true"); len(list) != 0 || totalCountOf(t, r) != 0 {
		t.Fatalf("live executions of a stopped policy: %s (Total-Count %q)", r.Body, r.Header.Get("Total-Count"))
	}
}

func TestListingsRefuseBadQueries(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	policy := h.Submit(t, "CLOCK", nil, map[string]any{"kind": "Periodic", "cron_spec": "0 0 0 1 1 *"})
	for _, ep := range []struct{ name, base string }{
		{"Jobs", "/api/v1/jobs?"},
		{"Scheduled", "/api/v1/jobs?kind=Scheduled&"},
		{"Periodic", "/api/v1/jobs?kind=Periodic&"},
		{"Executions", "/api/v1/jobs/" + policy.ID + "/executions?"},
	} {
		base := ep.base
		for _, q := range []string{"page_size=0", "page_size=-1", "page_size=abc", "page_size=1001", "page_number=0", "page_number=x"} {
			t.Run(ep.name+"/"+q, func(t *testing.T) {
				body := errorOf(t, h.Do(t, http.MethodGet, base+q, hosttest.Auth, nil), http.StatusBadRequest)
				param, _, _ := strings.Cut(q, "=")
				if body.Code != 10013 || !strings.Contains(body.Details, param) {
					t.Fatalf("%s%s: %+v", base, q, body)
				}
			})
		}
	}
	for _, path := range []string{"/api/v1/jobs?kind=Sometimes", "/api/v1/jobs/" + policy.ID + "/executions?non_dead_only=maybe"} {
		if body := errorOf(t, h.Do(t, http.MethodGet, path, hosttest.Auth, nil), http.StatusBadRequest); body.Code != 10013 {
			t.Errorf("%s: %+v", path, body)
		}
	}
	// The largest page size is accepted.
	if _, r := listPage(t, h, "/api/v1/jobs?kind=Scheduled&page_size=1000"); totalCountOf(t, r) != 0 {
		t.Errorf("Total-Count %q", r.Header.Get("Total-Count"))
	}
}

// TestListByStatusAndNameGivesFullPages: the listing indices make every
// page of a filtered listing full but the last, however the jobs of
// other statuses, names and kinds are mixed in.
func TestListByStatusAndNameGivesFullPages(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	var done []string
	for i := 0; i < 12; i++ {
		done = append(done, h.Submit(t, "NOOP", map[string]any{"i": float64(i)}, nil).ID)
		h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 600})
	}
	for i := 0; i < 5; i++ {
		h.Submit(t, "SPAWN", map[string]any{"name": "NOPE"}, nil) // ends in Error
	}
	for _, id := range done {
		h.WaitStatus(t, id, job.Success, wait)
	}
	walk := func(query string) []string {
		var got []string
		cursor := ""
		for page := 1; ; page++ {
			path := "/api/v1/jobs?page_size=5&" + query
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			list, r := listPage(t, h, path)
			cursor = r.Header.Get("Next-Cursor")
			got = append(got, idsOf(list)...)
			if cursor == "0" {
				return got
			}
			if len(list) != 5 {
				t.Fatalf("%s: page %d holds %d jobs with more to come (Next-Cursor %s): a page must be full", query, page, len(list), cursor)
			}
			if page > 100 {
				t.Fatalf("%s: no end after %d pages", query, page)
			}
		}
	}
	got := walk("status=Success&name=NOOP")
	if len(got) != len(done) {
		t.Fatalf("status=Success&name=NOOP listed %d jobs, want %d", len(got), len(done))
	}
	want := map[string]bool{}
	for _, id := range done {
		want[id] = true
	}
	for _, id := range got {
		if !want[id] {
			t.Fatalf("status=Success&name=NOOP listed %s, which is not one of them", id)
		}
	}
	if got := walk("kind=Generic&name=DEMO"); len(got) != 0 {
		t.Fatalf("kind=Generic&name=DEMO listed %d jobs; every DEMO job here is Scheduled", len(got))
	}
	if got := walk("status=Scheduled"); len(got) != 12 {
		t.Fatalf("status=Scheduled listed %d jobs, want 12", len(got))
	}
	if got := walk("kind=Generic"); len(got) != 17 {
		t.Fatalf("kind=Generic listed %d jobs, want 17", len(got))
	}
	if body := errorOf(t, h.Do(t, http.MethodGet, "/api/v1/jobs?status=Finished", hosttest.Auth, nil), http.StatusBadRequest); body.Code != 10013 {
		t.Fatalf("bad status: %+v", body)
	}
}
