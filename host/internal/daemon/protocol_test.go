package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// The tests of this file run protocol v2's features through a real host:
// the "features" fixture plugin beside DEMO.

func featuresHost(t *testing.T, mutate func(*config.Config)) *hosttest.Host {
	t.Helper()
	return hosttest.NewCluster(t, "demo", "features").Start(t, mutate)
}

func TestOutputIsKeptWithTheStatsAndSentInTheFinalHook(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t)
	h := featuresHost(t, nil)
	st := submitWithHook(t, h, "OUTPUT", map[string]any{"value": map[string]any{"copied": 3, "skipped": []string{"a"}}}, recv.url("/hook"))
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	if string(done.Output) != `{"copied":3,"skipped":["a"]}` {
		t.Fatalf("output in the stats = %s", done.Output)
	}
	recv.waitFor(t, st.ID, "Success", wait)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	last := recv.events[len(recv.events)-1]
	if last.Metadata == nil || string(last.Metadata.Output) != `{"copied":3,"skipped":["a"]}` {
		t.Fatalf("the final hook's stats %+v lack the output", last.Metadata)
	}
	// A job without output shows none.
	if got := h.WaitStatus(t, h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), nil).ID, job.Success, wait); got.Output != nil {
		t.Fatalf("DEMO's output %s", got.Output)
	}
}

func TestAPermanentFailureIsNeverRetried(t *testing.T) {
	t.Parallel()
	h := featuresHost(t, nil)
	sub := h.Subscribe(t)
	st := h.Submit(t, "PERMANENT", nil, nil) // its job type retries failures (the defaults)
	ev := hosttest.WaitEvent(t, sub, wait, "the end of the run", func(e job.Event) bool { return e.JobID == st.ID && e.To == job.Error })
	if ev.Reason != job.Failed || ev.RetryAt != 0 || ev.Detail != "wrong password" {
		t.Fatalf("the failure event %+v: want a final failure, no retry", ev)
	}
	log := h.LogText(t, st.ID)
	if !strings.Contains(log, "attempt 1 failed: wrong password") || !strings.Contains(log, "the failure is permanent") || strings.Contains(log, "retrying") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestASnoozedJobRunsAgainWithoutCountingAFailure(t *testing.T) {
	t.Parallel()
	h := featuresHost(t, nil)
	sub := h.Subscribe(t)
	st := h.Submit(t, "SNOOZE", map[string]any{"times": 2, "seconds": 1}, nil)
	var snoozes []job.Event
	for len(snoozes) < 2 {
		ev := hosttest.WaitEvent(t, sub, wait, "a snooze", func(e job.Event) bool { return e.JobID == st.ID && e.Reason == job.Snoozed })
		if ev.From != job.Running || ev.To != job.Scheduled || ev.Revision <= ev.FromRevision || ev.RetryAt <= ev.Time.Unix() {
			t.Fatalf("snooze event %+v: want Running -> Scheduled in a new revision, due later", ev)
		}
		snoozes = append(snoozes, ev)
	}
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	// Three runs, each the first attempt: a snooze is no failure.
	if done.CheckIn != "run 3 attempt 1" {
		t.Fatalf("last check-in %q, want the third run still at attempt 1", done.CheckIn)
	}
	if log := h.LogText(t, st.ID); strings.Count(log, "snoozing for 1s") != 2 || strings.Contains(log, "failed") {
		t.Fatalf("log:\n%s", log)
	}

	// Past its job type's bound (3), a snooze is a failure.
	over := h.Submit(t, "SNOOZE", map[string]any{"times": 10, "seconds": 1}, nil)
	ev := hosttest.WaitEvent(t, sub, 30*time.Second, "the end", func(e job.Event) bool { return e.JobID == over.ID && e.To == job.Error })
	if ev.Reason != job.Failed || !strings.Contains(ev.Detail, "snoozed 3 times, the most allowed") {
		t.Fatalf("failure event %+v", ev)
	}
}

func TestTheSchemaDecidesOnTheHost(t *testing.T) {
	t.Parallel()
	h := featuresHost(t, nil)
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{}, `invalid parameters for job TYPED: parameter "count" is required`},
		{map[string]any{"count": 11}, `parameter "count" must be a whole number from 1 to 10, got 11`},
		{map[string]any{"count": 2, "colour": "red"}, `unknown parameter "colour" (known: count, label)`},
		{map[string]any{"count": "2"}, `parameter "count" must be a whole number, got "2"`},
	} {
		body := errorOf(t, h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("TYPED", tc.params, nil)), http.StatusBadRequest)
		if body.Code != 10013 || !strings.Contains(body.Details, tc.want) {
			t.Errorf("%v: %+v, want %q", tc.params, body, tc.want)
		}
	}
	st := h.Submit(t, "TYPED", map[string]any{"count": 4, "label": "x"}, nil)
	if got := h.WaitStatus(t, st.ID, job.Success, wait); got.CheckIn != "count=4 label=x attempt=1" {
		t.Fatalf("check-in %q", got.CheckIn)
	}
}

func TestEachPluginGetsItsOwnConfigurationWithSecretsFromEnvAndFiles(t *testing.T) {
	t.Parallel()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("file-s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := featuresHost(t, func(c *config.Config) {
		c.PluginConfig = map[string]map[string]any{"features": {"greeting": "hi there", "token": map[string]any{"$file": token}}}
	})
	st := h.Submit(t, "CONFIG", nil, nil)
	if got := h.WaitStatus(t, st.ID, job.Success, wait); got.CheckIn != "greeting=hi there token_length=17" {
		t.Fatalf("check-in %q", got.CheckIn)
	}
	// The secret shows nowhere: not in the host's log, the stats or the API.
	for what, text := range map[string]string{"host log": h.Log.String(), "config": string(h.Do(t, http.MethodGet, "/api/v1/config", hosttest.Auth, nil).Body),
		"stats": string(h.Do(t, http.MethodGet, "/api/v1/jobs/"+st.ID, hosttest.Auth, nil).Body), "job log": h.LogText(t, st.ID)} {
		if strings.Contains(text, "file-s3cret-value") {
			t.Errorf("the plugin's secret is in the %s", what)
		}
	}
}
