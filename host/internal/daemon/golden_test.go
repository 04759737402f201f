package daemon_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/jsondiff"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/ with the answers of the real API")

// goldenHeaders are the answer headers a golden record keeps (when sent).
var goldenHeaders = []string{"Content-Type", "X-Content-Type-Options", "Total-Count", "Next-Cursor"}

// normalizer replaces the values that change from run to run by
// placeholders. A value replaced must look like what it stands for, so
// that a field whose type or form changes still fails the comparison.
type normalizer struct {
	now  int64
	subs []struct{ from, to string } // literal replacements in strings
}

var (
	reExecID = regexp.MustCompile(`\b[0-9a-f]{24}@[0-9]{10}\b`)
	reID     = regexp.MustCompile(`\b[0-9a-f]{24}\b`)
	reUnixMs = regexp.MustCompile(`\b1[0-9]{12}\b`)
	rePoolID = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

// timeKeys hold unix seconds.
var timeKeys = map[string]bool{
	"enqueue_time": true, "update_time": true, "run_at": true, "check_in_at": true, "die_at": true,
	"revision": true, "started_at": true, "heartbeat_at": true, "since": true,
}

func newNormalizer(c *hosttest.Cluster, h *hosttest.Host) *normalizer {
	n := &normalizer{now: time.Now().Unix()}
	n.subs = append(n.subs,
		struct{ from, to string }{c.Redis.URL(), "<redis-url>"},
		struct{ from, to string }{c.Namespace, "<namespace>"},
		struct{ from, to string }{h.URL, "<host-url>"},
	)
	return n
}

func (n *normalizer) value(key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = n.value(k, e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = n.value(key, e)
		}
		return out
	case float64:
		switch {
		case timeKeys[key] && v == float64(int64(v)) && int64(v) > n.now-86400 && int64(v) < n.now+86400:
			return "<unix>"
		case key == "numeric_policy_id" && v > 0 && v == float64(int64(v)):
			return "<numeric_policy_id>"
		case key == "pid" && v > 0 && v == float64(int64(v)):
			return "<pid>"
		}
		return v
	case string:
		if key == "worker_pool_id" && rePoolID.MatchString(v) {
			return "<worker_pool_id>"
		}
		for _, s := range n.subs {
			v = strings.ReplaceAll(v, s.from, s.to)
		}
		v = reExecID.ReplaceAllString(v, "<id>@<unix>")
		v = reID.ReplaceAllString(v, "<id>")
		return reUnixMs.ReplaceAllString(v, "<unix_ms>")
	}
	return v
}

// record is what a golden file holds: the status, the headers that matter
// and the body (decoded JSON, normalized).
func (n *normalizer) record(t *testing.T, r *hosttest.Response) map[string]any {
	t.Helper()
	headers := map[string]any{}
	for _, h := range goldenHeaders {
		if v := r.Header.Get(h); v != "" {
			headers[h] = n.value(h, v)
		}
	}
	rec := map[string]any{"status": float64(r.Status), "headers": headers}
	if len(r.Body) > 0 {
		var body any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("answer %d is not JSON: %v: %s", r.Status, err, r.Body)
		}
		rec["body"] = n.value("", body)
	}
	return rec
}

// checkAnswer compares an answer with testdata/<name>.json field by field,
// or with -update rewrites the file.
func (n *normalizer) checkAnswer(t *testing.T, name string, r *hosttest.Response) {
	t.Helper()
	got := n.record(t, r)
	path := filepath.Join("testdata", name+".json")
	if *updateGolden {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep the placeholders readable
		enc.SetIndent("", "  ")
		if err := enc.Encode(got); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readGolden(t, path)
	for _, d := range jsondiff.Diff("$", want, got) {
		t.Errorf("%s: %s", path, d)
	}
	if t.Failed() {
		t.Logf("answer: %d %s", r.Status, r.Body)
	}
}

func readGolden(t *testing.T, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test ./host/internal/daemon -run TestGolden -update writes it): %v", err)
	}
	var want any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("golden file %s is not JSON: %v", path, err)
	}
	return want
}

// TestGolden checks every answer shape of the API against its golden file.
func TestGolden(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, nil)
	n := newNormalizer(c, h)
	post := func(body any) *hosttest.Response {
		return h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, body)
	}
	get := func(path string) *hosttest.Response { return h.Do(t, http.MethodGet, path, hosttest.Auth, nil) }
	fast := demo(map[string]any{"hold_seconds": 0})

	// A policy that fires once, three seconds from now (then a day
	// later): its execution runs while the rest goes on.
	fire := time.Now().UTC().Add(3 * time.Second)
	spec := fmt.Sprintf("%d %d %d * * *", fire.Second(), fire.Minute(), fire.Hour())
	r := post(hosttest.Request("DEMO", fast, map[string]any{"kind": "Periodic", "cron_spec": spec}))
	policy := r.Stats(t)
	n.subs = append(n.subs, struct{ from, to string }{spec, "<cron_spec>"})
	n.checkAnswer(t, "submit_periodic", r)

	r = post(hosttest.Request("DEMO", fast, nil))
	n.checkAnswer(t, "submit_generic", r)
	ok := h.WaitStatus(t, r.Stats(t).ID, job.Success, wait)

	r = post(hosttest.Request("DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 60}))
	n.checkAnswer(t, "submit_scheduled", r)
	scheduled := r.Stats(t)

	n.checkAnswer(t, "get_success", get("/api/v1/jobs/"+ok.ID))
	n.checkAnswer(t, "action_stop_final", h.Action(t, ok.ID, "stop"))

	// Errors.
	n.checkAnswer(t, "error_400_bad_json", post(`{"job":`))
	n.checkAnswer(t, "error_400_bad_params", post(hosttest.Request("DEMO", map[string]any{}, nil)))
	n.checkAnswer(t, "error_400_bad_page_size", get("/api/v1/jobs?kind=Scheduled&page_size=0"))
	n.checkAnswer(t, "error_400_not_periodic", get("/api/v1/jobs/"+ok.ID+"/executions"))
	n.checkAnswer(t, "error_401", h.Do(t, http.MethodGet, "/api/v1/jobs/"+ok.ID, "", nil))
	n.checkAnswer(t, "error_404", get("/api/v1/jobs/"+job.NewID()))
	unique := map[string]any{"kind": "Scheduled", "schedule_delay": 90, "unique": true}
	post(hosttest.Request("DEMO", demo(map[string]any{"log_lines": 1}), unique))
	n.checkAnswer(t, "error_409_conflict", post(hosttest.Request("DEMO", demo(map[string]any{"log_lines": 1}), unique)))
	n.checkAnswer(t, "error_409_mismatch", h.Action(t, ok.ID, "retry"))
	n.checkAnswer(t, "error_501", h.Action(t, ok.ID, "pause"))

	// Listings.
	post(hosttest.Request("DEMO", demo(map[string]any{"log_lines": 2}), map[string]any{"kind": "Scheduled", "schedule_delay": 120}))
	var exec *job.Stats
	pollUntil(t, wait, "a run of the policy's execution", func() bool {
		execs, _ := listPage(t, h, "/api/v1/jobs/"+policy.ID+"/executions")
		if len(execs) == 1 && execs[0].Status == job.Success {
			exec = execs[0]
		}
		return exec != nil
	})
	n.checkAnswer(t, "executions", get("/api/v1/jobs/"+policy.ID+"/executions"))
	n.checkAnswer(t, "get_execution", get("/api/v1/jobs/"+exec.ID))
	n.checkAnswer(t, "list_scheduled", get("/api/v1/jobs?kind=Scheduled"))
	n.checkAnswer(t, "list_periodic", get("/api/v1/jobs?kind=Periodic"))
	n.checkAnswer(t, "stats", h.Do(t, http.MethodGet, "/api/v1/stats", "", nil))
	n.checkAnswer(t, "config", get("/api/v1/config"))
	n.checkAnswer(t, "action_stop", h.Action(t, scheduled.ID, "stop"))
}

// TestGoldenComparisonCatchesChanges makes sure the golden comparison
// fails on a renamed, missing, added or retyped field.
func TestGoldenComparisonCatchesChanges(t *testing.T) {
	t.Parallel()
	if *updateGolden {
		t.Skip("the golden files are being rewritten")
	}
	golden := readGolden(t, filepath.Join("testdata", "get_success.json"))
	n := &normalizer{now: time.Now().Unix()}
	for _, tc := range []struct {
		name   string
		change func(j map[string]any)
		want   string
	}{
		{"Renamed", func(j map[string]any) { j["checkin"] = j["check_in"]; delete(j, "check_in") }, "$.body.job.check_in: missing"},
		{"Missing", func(j map[string]any) { delete(j, "ref_link") }, "$.body.job.ref_link: missing"},
		{"Added", func(j map[string]any) { j["extra"] = true }, "$.body.job.extra: unexpected field"},
		{"TimeAsString", func(j map[string]any) { j["update_time"] = fmt.Sprint(n.now) }, "$.body.job.update_time"},
		{"TimeInMilliseconds", func(j map[string]any) { j["update_time"] = float64(n.now * 1000) }, "$.body.job.update_time"},
		{"BadID", func(j map[string]any) { j["id"] = "not-an-id" }, "$.body.job.id"},
		{"OtherStatus", func(j map[string]any) { j["status"] = "Error" }, "$.body.job.status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A real-looking answer: the golden values with real ones in
			// place of the placeholders, then changed.
			var body map[string]any
			raw, _ := json.Marshal(golden.(map[string]any)["body"])
			_ = json.Unmarshal(raw, &body)
			j := body["job"].(map[string]any)
			for k, v := range j {
				switch {
				case v == "<unix>":
					j[k] = float64(n.now)
				case k == "id":
					j[k] = job.NewID()
				case k == "ref_link":
					j[k] = job.RefLink(j["id"].(string))
				}
			}
			if diffs := jsondiff.Diff("$", golden, map[string]any{"status": float64(200), "headers": golden.(map[string]any)["headers"], "body": n.value("", body)}); len(diffs) != 0 {
				t.Fatalf("the unchanged answer differs: %v", diffs)
			}
			tc.change(j)
			got := map[string]any{"status": float64(200), "headers": golden.(map[string]any)["headers"], "body": n.value("", body)}
			diffs := strings.Join(jsondiff.Diff("$", golden, got), "\n")
			if !strings.Contains(diffs, tc.want) {
				t.Fatalf("differences %q do not name %q", diffs, tc.want)
			}
		})
	}
}
