package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/api"
	"github.com/berth-dev/berth/host/internal/job"
)

func TestParameterSizeIsBounded(t *testing.T) {
	t.Parallel()
	submit := func(paramBytes int) string {
		return fmt.Sprintf(`{"job":{"name":"DEMO","parameters":{"blob":%q},"metadata":{"kind":"Generic"}}}`, strings.Repeat("x", paramBytes))
	}
	tests := []struct {
		name   string
		limit  int64
		params int
		want   int
	}{
		{"SmallUnderDefault", 0, 1000, http.StatusAccepted},
		{"JustUnderDefault", 0, api.DefaultMaxParameterBytes - 20, http.StatusAccepted},
		{"OverDefault", 0, api.DefaultMaxParameterBytes + 1, http.StatusBadRequest},
		{"OverConfigured", 4096, 5000, http.StatusBadRequest},
		{"UnderConfigured", 200 << 10, 150 << 10, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, o *api.Options) {
				f.stats = pendingStats()
				o.MaxParameterBytes = tt.limit
			})
			r := b.do(t, http.MethodPost, "/api/v1/jobs", submit(tt.params))
			if tt.want == http.StatusAccepted {
				if r.status != tt.want {
					t.Fatalf("status = %d; want 202 (%s)", r.status, r.body)
				}
				return
			}
			wantError(t, r, http.StatusBadRequest, 10013, `"job.parameters" is`, "api.max_parameters_bytes")
			b.wantNoCalls(t)
		})
	}
}

// A page larger than a MiB is written as it is encoded, and is still one
// valid JSON array with the listing's headers.
func TestALargePageIsStreamed(t *testing.T) {
	t.Parallel()
	var jobs []*job.Stats
	for i := 0; i < 40; i++ {
		st := pendingStats()
		st.ID = fmt.Sprintf("%024x", i)
		st.Parameters = job.Parameters{"blob": strings.Repeat("y", 60<<10)}
		jobs = append(jobs, st)
		if i == 7 {
			jobs = append(jobs, nil) // a nil entry is left out
		}
	}
	b := setup(t, func(f *fakeBackend, _ *api.Options) {
		f.page = &job.Page{Jobs: jobs, Total: 40, NextCursor: "17"}
	})
	r := b.do(t, http.MethodGet, "/api/v1/jobs?kind=Generic", "")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	if r.header.Get("Content-Length") != "" {
		t.Errorf("a %d-byte page was sent with a Content-Length, not streamed", len(r.body))
	}
	var got []job.Envelope
	if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 40 {
		t.Fatalf("the page is not the 40 jobs as JSON (%d, %v)", len(got), err)
	}
	for i, e := range got {
		if e.Job.ID != fmt.Sprintf("%024x", i) {
			t.Fatalf("job %d is %s", i, e.Job.ID)
		}
	}
	if r.header.Get("Next-Cursor") != "17" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", r.header)
	}
	// A small page keeps its Content-Length.
	small := setup(t, func(f *fakeBackend, _ *api.Options) { f.page = &job.Page{Jobs: jobs[:3], Total: -1} })
	if r := small.do(t, http.MethodGet, "/api/v1/jobs", ""); r.header.Get("Content-Length") == "" {
		t.Error("a small page has no Content-Length")
	}
}

// Listings beyond the limit wait for a turn; a caller that gives up
// while waiting leaves without one.
func TestListingsAreServedAFewAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t, func(f *fakeBackend, o *api.Options) {
		f.block = true
		o.MaxConcurrentListings = 1
	})
	first := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(first)
		req := b.newRequest(t, http.MethodGet, "/api/v1/jobs", "").WithContext(ctx)
		if resp, err := b.srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-b.fake.entered // the first listing holds the only turn
	wctx, wcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer wcancel()
	req := b.newRequest(t, http.MethodGet, "/api/v1/jobs/"+id1+"/executions", "").WithContext(wctx)
	if resp, err := b.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a second listing was served (%d) while the first held the only turn", resp.StatusCode)
	}
	if calls := b.fake.Calls(); len(calls) != 1 {
		t.Errorf("backend calls = %q; want only the first listing", calls)
	}
	cancel()
	<-first
}
