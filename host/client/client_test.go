package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/client"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(redistest.WithCleanup(m),
		// A wake-up (gocraft/work's Drain) in flight when a host stops
		// mid-job never returns; see queue.Pool.Wake.
		goleak.IgnoreTopFunction("github.com/gocraft/work.(*worker).drain"),
		goleak.IgnoreAnyFunction("github.com/gocraft/work.(*WorkerPool).Drain"))
}

// setup starts a real host and a client of it.
func setup(t *testing.T) (*client.Client, *hosttest.Host, context.Context) {
	t.Helper()
	h := hosttest.NewCluster(t).Start(t, nil)
	c, err := client.New(h.URL, hosttest.Secret, client.WithPollInterval(10*time.Millisecond),
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c, h, ctx
}

func demo(hold float64) client.RequestJob {
	return client.RequestJob{Name: "DEMO", Parameters: client.Parameters{"image": "demo", "hold_seconds": hold},
		Metadata: &client.Metadata{Kind: client.Generic}}
}

func TestAJobFromSubmissionToItsLog(t *testing.T) {
	t.Parallel()
	c, _, ctx := setup(t)
	st, err := c.Submit(ctx, demo(0))
	if err != nil || st.Status != client.Pending || st.Name != "DEMO" || len(st.ID) != 24 {
		t.Fatalf("Submit = %+v, %v", st, err)
	}
	done, err := c.Wait(ctx, st.ID, client.Ended)
	if err != nil || done.Status != client.Success || done.CheckIn != "progress data: %60" {
		t.Fatalf("Wait = %+v, %v", done, err)
	}
	log, err := c.Log(ctx, st.ID)
	if err != nil || !strings.Contains(string(log), "DEMO job done") {
		t.Fatalf("Log = %q, %v", log, err)
	}
	got, err := c.Get(ctx, st.ID)
	if err != nil || got.Status != client.Success || got.Revision != done.Revision {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestStopAndTheErrorsOfActions(t *testing.T) {
	t.Parallel()
	c, _, ctx := setup(t)
	st, err := c.Submit(ctx, demo(3600))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, st.ID, func(s *client.Stats) bool { return s.Status == client.Running }); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Wait(ctx, st.ID, client.Ended); err != nil || got.Status != client.Stopped {
		t.Fatalf("after Stop: %+v, %v", got, err)
	}
	err = c.Act(ctx, st.ID, client.ActionRetry)
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrStatusMismatch) || !errors.Is(err, client.ErrConflict) || !errors.As(err, &apiErr) || apiErr.Code != 10016 {
		t.Fatalf("retry of a Stopped job: %v, want a status mismatch (409, 10016)", err)
	}
	if _, err := c.Get(ctx, "0123456789abcdef01234567"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := c.Submit(ctx, client.RequestJob{Name: "NOPE", Metadata: &client.Metadata{Kind: client.Generic}}); !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("Submit of an unknown job name: %v, want ErrBadRequest naming it", err)
	}
	uniq := demo(3600)
	uniq.Metadata = &client.Metadata{Kind: client.KindScheduled, ScheduleDelay: 600, Unique: true}
	first, err := c.Submit(ctx, uniq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, uniq); !errors.Is(err, client.ErrConflict) || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("a duplicate unique job: %v, want ErrConflict naming %s", err, first.ID)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	_, h, ctx := setup(t)
	wrong, err := client.New(h.URL+"/api/v1/", "not-the-secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Get(ctx, "0123456789abcdef01234567"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a wrong secret: %v, want ErrUnauthorized", err)
	}
	// The worker pools need no secret.
	pools, err := wrong.WorkerPools(ctx)
	if err != nil || len(pools) != 1 || pools[0].Status != client.PoolHealthy {
		t.Fatalf("WorkerPools = %+v, %v", pools, err)
	}
	for _, bad := range []string{"", "localhost:9444", "ftp://host", "http://"} {
		if _, err := client.New(bad, "s"); err == nil {
			t.Errorf("New(%q) accepted it", bad)
		}
	}
}

func TestListingsAndConfig(t *testing.T) {
	t.Parallel()
	c, h, ctx := setup(t)
	var ids []string
	for range 7 {
		st, err := c.Submit(ctx, client.RequestJob{Name: "NOOP", Metadata: &client.Metadata{Kind: client.Generic}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	for _, id := range ids {
		if _, err := c.Wait(ctx, id, client.Ended); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	o := client.ListOptions{Status: client.Success, Name: "NOOP", PageSize: 3}
	for pages := 0; ; pages++ {
		p, err := c.List(ctx, o)
		if err != nil || p.Total != -1 {
			t.Fatalf("List = %+v, %v", p, err)
		}
		for _, s := range p.Jobs {
			seen[s.ID] = true
		}
		if p.NextCursor == "0" || pages > 10 {
			break
		}
		o.Cursor = p.NextCursor
	}
	if len(seen) != len(ids) {
		t.Fatalf("the listing walked %d jobs, want %d", len(seen), len(ids))
	}
	policy, err := c.Submit(ctx, client.RequestJob{Name: "CLOCK", Metadata: &client.Metadata{Kind: client.Periodic, CronSpec: "0 0 0 1 1 *"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.List(ctx, client.ListOptions{Kind: client.Periodic, PageNumber: 1, PageSize: 10})
	if err != nil || p.Total != 1 || len(p.Jobs) != 1 || p.Jobs[0].ID != policy.ID {
		t.Fatalf("periodic policies: %+v, %v", p, err)
	}
	if ex, err := c.Executions(ctx, policy.ID, 1, 10, true); err != nil || ex.Total != 0 {
		t.Fatalf("Executions = %+v, %v", ex, err)
	}
	cfg, err := c.Config(ctx)
	if err != nil || cfg.RedisPoolConfig.Namespace != h.Config.WorkerPool.RedisPool.Namespace {
		t.Fatalf("Config = %+v, %v", cfg, err)
	}
}
