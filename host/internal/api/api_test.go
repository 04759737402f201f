package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/api"
	"github.com/berth-dev/berth/host/internal/job"
)

func TestSuccessShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		configure func(*fakeBackend)
		status    int
		golden    string // "" for no JSON body
		wantCall  string
	}{
		{
			name:   "SubmitGeneric",
			method: http.MethodPost, path: "/api/v1/jobs",
			body: `{"job":{"name":"DEMO","parameters":{"sleep":1},` +
				`"status_hook":"http://core:8080/service/notifications/tasks/43","metadata":{"kind":"Generic","unique":false}}}`,
			configure: func(f *fakeBackend) { f.stats = pendingStats() },
			status:    http.StatusAccepted, golden: "submit", wantCall: "Submit DEMO",
		},
		{
			name:   "ListJobs",
			method: http.MethodGet, path: "/api/v1/jobs",
			configure: func(f *fakeBackend) {
				f.page = &job.Page{Jobs: []*job.Stats{fullStats(), pendingStats()}, Total: 2, NextCursor: "0"}
			},
			status: http.StatusOK, golden: "list", wantCall: "List",
		},
		{
			name:   "ListEmpty",
			method: http.MethodGet, path: "/api/v1/jobs",
			configure: func(f *fakeBackend) { f.page = &job.Page{NextCursor: "0"} },
			status:    http.StatusOK, golden: "list_empty", wantCall: "List",
		},
		{
			name:   "ListNilPage",
			method: http.MethodGet, path: "/api/v1/jobs",
			status: http.StatusOK, golden: "list_empty", wantCall: "List",
		},
		{
			name:   "GetJob",
			method: http.MethodGet, path: "/api/v1/jobs/" + id1,
			configure: func(f *fakeBackend) { f.stats = fullStats() },
			status:    http.StatusOK, golden: "get", wantCall: "Get " + id1,
		},
		{
			name:   "GetExecution",
			method: http.MethodGet, path: "/api/v1/jobs/" + exec1,
			configure: func(f *fakeBackend) { f.stats = executionStats(1700000000, job.Success) },
			status:    http.StatusOK, golden: "get_execution", wantCall: "Get " + exec1,
		},
		{
			name:   "GetExecutionEscapedAt",
			method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "%401700000000",
			configure: func(f *fakeBackend) { f.stats = executionStats(1700000000, job.Success) },
			status:    http.StatusOK, golden: "get_execution", wantCall: "Get " + exec1,
		},
		{
			name:   "Executions",
			method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/executions?page_number=1&page_size=100",
			configure: func(f *fakeBackend) {
				f.page = &job.Page{Jobs: []*job.Stats{
					executionStats(1700000300, job.Running),
					executionStats(1700000000, job.Success),
				}, Total: 2}
			},
			status: http.StatusOK, golden: "executions", wantCall: "Executions " + id1,
		},
		{
			name:   "Stats",
			method: http.MethodGet, path: "/api/v1/stats",
			configure: func(f *fakeBackend) {
				f.pools = []*job.WorkerPool{
					{WorkerPoolID: "a1b2c3d4e5f6a7b8c9d0e1f2", StartedAt: 1700000000, HeartbeatAt: 1700000100,
						JobNames: []string{"DEMO", "GARBAGE_COLLECTION"}, Concurrency: 10, Status: job.PoolHealthy},
					{WorkerPoolID: "0f1e2d3c4b5a69788796a5b4", StartedAt: 1690000000, HeartbeatAt: 1690000100,
						JobNames: []string{"DEMO"}, Concurrency: 5, Status: job.PoolDead},
				}
			},
			status: http.StatusOK, golden: "stats", wantCall: "WorkerPools",
		},
		{
			name:   "Config",
			method: http.MethodGet, path: "/api/v1/config",
			configure: func(f *fakeBackend) {
				f.cfg = job.PoolConfig{RedisPoolConfig: job.RedisPoolConfig{
					RedisURL: "redis://:password@redis:6379/2", Namespace: "harbor_job_service_namespace",
					IdleTimeoutSecond: 3600,
				}}
			},
			status: http.StatusOK, golden: "config", wantCall: "Config",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) {
				if tt.configure != nil {
					tt.configure(f)
				}
			})
			r := b.do(t, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d; want %d (body %s)", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			checkGolden(t, tt.golden, r.body)
			b.wantCalls(t, tt.wantCall)
		})
	}
}

func TestSubmitPassesRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want *job.RequestJob
	}{
		{
			name: "Scheduled",
			body: `{"job":{"name":"GARBAGE_COLLECTION","parameters":{"dry_run":true},"status_hook":"http://core/hook",` +
				`"metadata":{"kind":"Scheduled","schedule_delay":30,"unique":true}},"extra":"ignored"}`,
			want: &job.RequestJob{
				Name: "GARBAGE_COLLECTION", Parameters: job.Parameters{"dry_run": true}, StatusHook: "http://core/hook",
				Metadata: &job.Metadata{Kind: job.KindScheduled, ScheduleDelay: 30, Unique: true},
			},
		},
		{
			name: "PeriodicWithoutParameters",
			body: `{"job":{"name":"SCHEDULER","metadata":{"kind":"Periodic","cron_spec":"0 0 * * * *"}}}`,
			want: &job.RequestJob{
				Name: "SCHEDULER", Parameters: job.Parameters{},
				Metadata: &job.Metadata{Kind: job.Periodic, CronSpec: "0 0 * * * *"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.stats = pendingStats() })
			r := b.do(t, http.MethodPost, "/api/v1/jobs", tt.body)
			if r.status != http.StatusAccepted {
				t.Fatalf("status = %d; want 202 (body %s)", r.status, r.body)
			}
			b.fake.mu.Lock()
			got := b.fake.request
			b.fake.mu.Unlock()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("backend got %+v (metadata %+v); want %+v (metadata %+v)", got, got.Metadata, tt.want, tt.want.Metadata)
			}
		})
	}
}

func TestActionSuccess(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"stop", "cancel", "retry"} {
		t.Run(strings.ToUpper(action[:1])+action[1:], func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			r := b.do(t, http.MethodPost, "/api/v1/jobs/"+id1, `{"action":"`+action+`"}`)
			if r.status != http.StatusNoContent {
				t.Fatalf("status = %d; want 204 (body %s)", r.status, r.body)
			}
			if len(r.body) != 0 {
				t.Errorf("body = %q; want none", r.body)
			}
			b.wantCalls(t, "Action "+id1+" "+action)
		})
	}
}

func TestLogSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   string
		log  []byte
	}{
		{name: "Job", id: id1, log: []byte("2026-11-21T14:03:05Z [INFO] start\n2026-11-21T14:03:06Z [INFO] done\n")},
		{name: "Execution", id: exec1, log: []byte("2026-11-21T14:03:05Z [INFO] {\"json\": \"<looks like html>\"}\n")},
		{name: "Empty", id: id1, log: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.log = tt.log })
			r := b.do(t, http.MethodGet, "/api/v1/jobs/"+tt.id+"/log", "")
			if r.status != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %s)", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q; want text/plain; charset=utf-8", ct)
			}
			if string(r.body) != string(tt.log) {
				t.Errorf("body = %q; want %q", r.body, tt.log)
			}
			b.wantCalls(t, "Log "+tt.id)
		})
	}
}

func TestListingHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		path           string
		page           *job.Page
		wantTotal      string
		wantNextCursor string // "" means absent
	}{
		{name: "ListWithCursor", path: "/api/v1/jobs",
			page: &job.Page{Jobs: []*job.Stats{pendingStats()}, Total: 57, NextCursor: "1234"}, wantTotal: "57", wantNextCursor: "1234"},
		{name: "ListDone", path: "/api/v1/jobs",
			page: &job.Page{Jobs: []*job.Stats{pendingStats()}, Total: 1, NextCursor: "0"}, wantTotal: "1", wantNextCursor: "0"},
		{name: "ListNoCursor", path: "/api/v1/jobs?kind=Scheduled",
			page: &job.Page{Jobs: []*job.Stats{pendingStats()}, Total: 3}, wantTotal: "3"},
		{name: "ListEmpty", path: "/api/v1/jobs", page: &job.Page{}, wantTotal: "0"},
		{name: "ExecutionsNeverSendACursor", path: "/api/v1/jobs/" + id1 + "/executions",
			page: &job.Page{Jobs: []*job.Stats{executionStats(1700000000, job.Success)}, Total: 9, NextCursor: "5"}, wantTotal: "9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.page = tt.page })
			r := b.do(t, http.MethodGet, tt.path, "")
			if r.status != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %s)", r.status, r.body)
			}
			if got := r.header.Values("Total-Count"); len(got) != 1 || got[0] != tt.wantTotal {
				t.Errorf("Total-Count = %q; want [%q]", got, tt.wantTotal)
			}
			got, present := r.header["Next-Cursor"]
			switch {
			case tt.wantNextCursor == "" && present:
				t.Errorf("Next-Cursor = %q; want none", got)
			case tt.wantNextCursor != "" && (len(got) != 1 || got[0] != tt.wantNextCursor):
				t.Errorf("Next-Cursor = %q; want [%q]", got, tt.wantNextCursor)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	const sent = "wrong-secret-0xDEADBEEF"
	tests := []struct {
		name          string
		serviceSecret string
		header        *string // nil: no header at all
		want          string  // in the details
	}{
		{name: "MissingHeader", serviceSecret: secret, header: nil, want: `"Authorization" is missing`},
		{name: "BlankHeader", serviceSecret: secret, header: ptr("   "), want: `"Authorization" is missing`},
		{name: "WrongScheme", serviceSecret: secret, header: ptr("Bearer " + sent), want: "does not use the Harbor-Secret scheme"},
		{name: "LowercaseScheme", serviceSecret: secret, header: ptr("harbor-secret " + sent), want: "does not use the Harbor-Secret scheme"},
		{name: "EmptySecret", serviceSecret: secret, header: ptr("Harbor-Secret   "), want: "empty secret"},
		{name: "Mismatch", serviceSecret: secret, header: ptr("Harbor-Secret " + sent), want: "does not match"},
		{name: "PrefixOfSecret", serviceSecret: secret, header: ptr("Harbor-Secret " + secret[:5]), want: "does not match"},
		{name: "SecretWithSuffix", serviceSecret: secret, header: ptr("Harbor-Secret " + secret + "x"), want: "does not match"},
		{name: "NoSpaceAfterScheme", serviceSecret: secret, header: ptr("Harbor-Secret" + secret), want: "with a space after the scheme"},
		{name: "TabIsASpace", serviceSecret: secret, header: ptr("Harbor-Secret\t" + sent), want: "does not match"},
		// A service without a secret answers like one with another secret:
		// a caller learns nothing of its setup.
		{name: "ServiceSecretUnset", serviceSecret: "", header: ptr("Harbor-Secret " + sent), want: "does not match"},
		{name: "ServiceSecretUnsetEmptySent", serviceSecret: "", header: ptr("Harbor-Secret"), want: "empty secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, o *api.Options) {
				o.Secret = tt.serviceSecret
				f.stats = fullStats()
			})
			req := b.newRequest(t, http.MethodGet, "/api/v1/jobs/"+id1, "")
			req.Header.Del("Authorization")
			if tt.header != nil {
				req.Header.Set("Authorization", *tt.header)
			}
			r := b.send(t, req)
			details := wantError(t, r, http.StatusUnauthorized, 10011, tt.want)
			if strings.Contains(details, sent) || strings.Contains(string(r.body), sent) {
				t.Errorf("the answer echoes the secret sent: %s", r.body)
			}
			if strings.Contains(string(r.body), "not set") {
				t.Errorf("the answer tells how the service is set up: %s", r.body)
			}
			if strings.Contains(b.logs.String(), sent) {
				t.Errorf("the log holds the secret sent:\n%s", b.logs.String())
			}
			b.wantNoCalls(t)
		})
	}
}

func TestAuthAccepted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
	}{
		{name: "Canonical", header: "Harbor-Secret " + secret},
		{name: "ExtraSpaces", header: "  Harbor-Secret    " + secret + "  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.stats = fullStats() })
			req := b.newRequest(t, http.MethodGet, "/api/v1/jobs/"+id1, "")
			req.Header.Set("Authorization", tt.header)
			if r := b.send(t, req); r.status != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %s)", r.status, r.body)
			}
		})
	}
}

func TestAuthEveryRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		path   string
		body   string
	}{
		{name: "Submit", method: http.MethodPost, path: "/api/v1/jobs", body: `{"job":{"name":"DEMO","metadata":{"kind":"Generic"}}}`},
		{name: "List", method: http.MethodGet, path: "/api/v1/jobs"},
		{name: "Get", method: http.MethodGet, path: "/api/v1/jobs/" + id1},
		{name: "Action", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"stop"}`},
		{name: "Log", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/log"},
		{name: "Executions", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/executions"},
		{name: "Config", method: http.MethodGet, path: "/api/v1/config"},
		{name: "StatsTrailingSlash", method: http.MethodGet, path: "/api/v1/stats/"},
		{name: "StatsPost", method: http.MethodPost, path: "/api/v1/stats"},
		{name: "StatsUppercase", method: http.MethodGet, path: "/api/v1/STATS"},
		{name: "StatsEncoded", method: http.MethodGet, path: "/api/v1/%73tats"},
		{name: "StatsDotSegment", method: http.MethodGet, path: "/api/v1/jobs/../stats"},
		{name: "UnknownRoute", method: http.MethodGet, path: "/api/v1/nothing"},
		{name: "Root", method: http.MethodGet, path: "/"},
		{name: "BadIDStillAuthFirst", method: http.MethodGet, path: "/api/v1/jobs/not-an-id/log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) {
				f.pools = []*job.WorkerPool{{WorkerPoolID: "p", Status: job.PoolHealthy}}
			})
			req := b.newRequest(t, tt.method, tt.path, tt.body)
			req.Header.Del("Authorization")
			wantError(t, b.send(t, req), http.StatusUnauthorized, 10011, "missing")
			b.wantNoCalls(t)
		})
	}
}

func TestStatsNeedsNoAuth(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, path string }{
		{name: "Plain", path: "/api/v1/stats"},
		{name: "WithQuery", path: "/api/v1/stats?probe=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, o *api.Options) {
				o.Secret = "" // not even a configured secret is needed
				f.pools = []*job.WorkerPool{{WorkerPoolID: "p", Status: job.PoolHealthy, JobNames: []string{"DEMO"}}}
			})
			req := b.newRequest(t, http.MethodGet, tt.path, "")
			req.Header.Del("Authorization")
			r := b.send(t, req)
			if r.status != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %s)", r.status, r.body)
			}
			b.wantCalls(t, "WorkerPools")
		})
	}
}

func TestBadJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string // "" is the submit route
		body string
		want []string
	}{
		{name: "SubmitTruncated", body: `{"job":{"name":"DEMO"`, want: []string{"not valid JSON", "at byte"}},
		{name: "SubmitSyntax", body: `{"job":{"name":"DEMO",}}`, want: []string{"not valid JSON", "at byte 23"}},
		{name: "SubmitNotJSON", body: `name=DEMO`, want: []string{"not valid JSON", "at byte 2"}},
		{name: "SubmitEmpty", body: ` `, want: []string{"body is empty", `{"job":`}},
		{name: "SubmitTrailingData", body: `{"job":{"name":"DEMO"}} {}`, want: []string{"not valid JSON"}},
		{name: "SubmitWrongFieldType", body: `{"job":{"name":"DEMO","metadata":{"kind":"Scheduled","schedule_delay":"30"}}}`,
			want: []string{`"job.metadata.schedule_delay"`, "JSON string", "whole number from 0 up"}},
		{name: "SubmitNegativeDelay", body: `{"job":{"name":"DEMO","metadata":{"kind":"Scheduled","schedule_delay":-1}}}`,
			want: []string{`"job.metadata.schedule_delay"`, "number -1"}},
		{name: "SubmitParametersNotObject", body: `{"job":{"name":"DEMO","parameters":[1],"metadata":{"kind":"Generic"}}}`,
			want: []string{`"job.parameters"`, "an object"}},
		{name: "SubmitArray", body: `[{"job":{}}]`, want: []string{"JSON array", "an object"}},
		{name: "ActionTruncated", path: "/api/v1/jobs/" + id1, body: `{"action":`, want: []string{"not valid JSON", `{"action":"stop"}`}},
		{name: "ActionWrongType", path: "/api/v1/jobs/" + id1, body: `{"action":1}`, want: []string{`"action"`, "a string"}},
		{name: "ActionEmpty", path: "/api/v1/jobs/" + id1, body: ``, want: []string{"body is empty", `{"action":"stop"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			path := tt.path
			if path == "" {
				path = "/api/v1/jobs"
			}
			wantError(t, b.do(t, http.MethodPost, path, tt.body), http.StatusBadRequest, 10001, tt.want...)
			b.wantNoCalls(t)
		})
	}
}

func TestSubmitCheckFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "NoJob", body: `{}`, want: `no "job" object`},
		{name: "NullJob", body: `{"job":null}`, want: `no "job" object`},
		{name: "Null", body: `null`, want: `no "job" object`},
		{name: "EmptyName", body: `{"job":{"name":"","metadata":{"kind":"Generic"}}}`, want: `"job.name" is empty`},
		{name: "NoMetadata", body: `{"job":{"name":"DEMO"}}`, want: `"job.metadata" is missing`},
		{name: "UnknownKind", body: `{"job":{"name":"DEMO","metadata":{"kind":"Hourly"}}}`, want: `"Hourly"`},
		{name: "LowercaseKind", body: `{"job":{"name":"DEMO","metadata":{"kind":"generic"}}}`, want: "Generic, Scheduled or Periodic"},
		{name: "ScheduledNoDelay", body: `{"job":{"name":"DEMO","metadata":{"kind":"Scheduled"}}}`, want: `"job.metadata.schedule_delay" must be a positive`},
		{name: "ScheduledTooLate", body: `{"job":{"name":"DEMO","metadata":{"kind":"Scheduled","schedule_delay":999999999999}}}`, want: "ten years"},
		{name: "PeriodicNoCron", body: `{"job":{"name":"DEMO","metadata":{"kind":"Periodic"}}}`, want: `"job.metadata.cron_spec" is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			wantError(t, b.do(t, http.MethodPost, "/api/v1/jobs", tt.body), http.StatusBadRequest, 10013, tt.want)
			b.wantNoCalls(t)
		})
	}
}

func TestUnknownAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		action string
	}{
		{name: "Reboot", body: `{"action":"reboot"}`, action: "reboot"},
		{name: "Uppercase", body: `{"action":"STOP"}`, action: "STOP"},
		{name: "Padded", body: `{"action":" stop"}`, action: " stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			r := b.do(t, http.MethodPost, "/api/v1/jobs/"+id1, tt.body)
			wantError(t, r, http.StatusNotImplemented, 10008, "command: "+tt.action+";", "stop, cancel and retry")
			b.wantNoCalls(t)
		})
	}
}

func TestBackendErrors(t *testing.T) {
	t.Parallel()
	const submitBody = `{"job":{"name":"DEMO","metadata":{"kind":"Generic","unique":true}}}`
	plain := errors.New("redis: connection refused")
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		err     error
		noStats bool // the backend answers no stats and no error
		// clientError: a 5xx status that is still the caller's mistake
		// (an action the backend does not know), not logged as an error.
		clientError bool
		status      int
		code        int
		want        []string
		wantNot     string
	}{
		// Not found.
		{name: "GetNotFound", method: http.MethodGet, path: "/api/v1/jobs/" + id1,
			err: fmt.Errorf("stats: load %s: %w", id1, job.ErrNotFound), status: 404, code: 10010, want: []string{id1}},
		{name: "ActionNotFound", method: http.MethodPost, path: "/api/v1/jobs/" + exec1, body: `{"action":"stop"}`,
			err: job.ErrNotFound, status: 404, code: 10010, want: []string{exec1}},
		{name: "LogNotFound", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/log",
			err: job.ErrNotFound, status: 404, code: 10010, want: []string{id1}},
		{name: "ExecutionsNotFound", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/executions",
			err: job.ErrNotFound, status: 404, code: 10010, want: []string{id1}},
		// Bad requests.
		{name: "SubmitUnknownJobName", method: http.MethodPost, path: "/api/v1/jobs", body: submitBody,
			err:    fmt.Errorf("queue: submit: %w", job.BadRequest("job with name 'DEMO' is unknown: no loaded plugin serves it")),
			status: 400, code: 10013, want: []string{"job with name 'DEMO' is unknown"}, wantNot: "queue: submit"},
		{name: "SubmitPluginValidate", method: http.MethodPost, path: "/api/v1/jobs", body: submitBody,
			err: job.BadRequest(`parameter "sleep" must be a number`), status: 400, code: 10013, want: []string{`"sleep"`}},
		{name: "ExecutionsNotPeriodic", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/executions",
			err: fmt.Errorf("period: %w", job.ErrNotPeriodic), status: 400, code: 10013, want: []string{id1, "has no executions"}},
		// Conflicts.
		{name: "SubmitDuplicateUnique", method: http.MethodPost, path: "/api/v1/jobs", body: submitBody,
			err:    fmt.Errorf("queue: enqueue unique: %w", &job.ConflictError{Name: "DEMO", ExistingID: id2}),
			status: 409, code: 10012, want: []string{"a unique DEMO job with the same parameters has not ended", id2}},
		{name: "RetryRunningJob", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"retry"}`,
			err:    &job.StatusMismatchError{ID: id1, Action: job.ActionRetry, Status: job.Running},
			status: 409, code: 10016, want: []string{"cannot retry job " + id1, "its status is Running", "retry needs Error"}},
		{name: "StopFinishedJob", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"stop"}`,
			err:    fmt.Errorf("runner: %w", &job.StatusMismatchError{ID: id1, Action: job.ActionStop, Status: job.Success}),
			status: 409, code: 10016, want: []string{"its status is Success"}},
		{name: "ActionUnknownToBackend", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"cancel"}`,
			err: job.ErrUnknownAction, status: 501, code: 10008, want: []string{"command: cancel"}, clientError: true},
		// Everything else is a 500 with the endpoint's code.
		{name: "Submit500", method: http.MethodPost, path: "/api/v1/jobs", body: submitBody,
			err: plain, status: 500, code: 10003, want: []string{plain.Error()}},
		{name: "List500", method: http.MethodGet, path: "/api/v1/jobs",
			err: plain, status: 500, code: 10014, want: []string{plain.Error()}},
		{name: "Get500", method: http.MethodGet, path: "/api/v1/jobs/" + id1,
			err: plain, status: 500, code: 10005, want: []string{plain.Error()}},
		{name: "Stop500", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"stop"}`,
			err: plain, status: 500, code: 10006, want: []string{plain.Error()}},
		{name: "Cancel500", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"cancel"}`,
			err: plain, status: 500, code: 10006, want: []string{plain.Error()}},
		{name: "Retry500", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"retry"}`,
			err: plain, status: 500, code: 10007, want: []string{plain.Error()}},
		{name: "Log500", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/log",
			err: plain, status: 500, code: 10009, want: []string{plain.Error()}},
		{name: "Executions500", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/executions",
			err: plain, status: 500, code: 10015, want: []string{plain.Error()}},
		{name: "SubmitNoStats", method: http.MethodPost, path: "/api/v1/jobs", body: submitBody,
			noStats: true, status: 500, code: 10003, want: []string{"no stats"}},
		{name: "GetNoStats", method: http.MethodGet, path: "/api/v1/jobs/" + id1,
			noStats: true, status: 500, code: 10005, want: []string{"no stats"}},
		// Anyone may ask /stats: its errors stay in the service log.
		{name: "Stats500", method: http.MethodGet, path: "/api/v1/stats",
			err: plain, status: 500, code: 10004, want: []string{"the service log has the details"}, wantNot: "connection refused"},
		{name: "BackendTimeoutWhileClientWaits", method: http.MethodGet, path: "/api/v1/jobs/" + id1,
			err: fmt.Errorf("redis: %w", context.DeadlineExceeded), status: 500, code: 10005, want: []string{"deadline exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) {
				f.err = tt.err
				if !tt.noStats {
					f.stats = fullStats()
				}
			})
			r := b.do(t, tt.method, tt.path, tt.body)
			details := wantError(t, r, tt.status, tt.code, tt.want...)
			if tt.wantNot != "" && strings.Contains(details, tt.wantNot) {
				t.Errorf("details = %q; want them without %q", details, tt.wantNot)
			}
			if calls := b.fake.Calls(); len(calls) != 1 {
				t.Errorf("backend calls = %q; want one", calls)
			}
			logs := b.logs.String()
			serverError := tt.status >= 500 && !tt.clientError
			if serverError && !strings.Contains(logs, "[ERROR]") {
				t.Errorf("a 500 was not logged as an error:\n%s", logs)
			}
			if serverError && tt.err != nil && !strings.Contains(logs, tt.err.Error()) {
				t.Errorf("the log lacks the error %q:\n%s", tt.err, logs)
			}
			if !serverError && strings.Contains(logs, "[ERROR]") {
				t.Errorf("a %d was logged as an error:\n%s", tt.status, logs)
			}
		})
	}
}

// TestStopMismatchMatchesCore checks that Harbor's core recognises a stop
// of an ended job from the answer's body (core's job client matches this
// pattern to learn the job's status).
func TestStopMismatchMatchesCore(t *testing.T) {
	t.Parallel()
	core := regexp.MustCompile("mismatch job status for stopping job: .*, job status (.*) is behind Running")
	b := setup(t, func(f *fakeBackend, _ *api.Options) {
		f.err = &job.StatusMismatchError{ID: id1, Action: job.ActionStop, Status: job.Error}
	})
	r := b.do(t, http.MethodPost, "/api/v1/jobs/"+id1, `{"action":"stop"}`)
	wantError(t, r, http.StatusConflict, 10016)
	m := core.FindStringSubmatch(string(r.body))
	if len(m) != 2 || m[1] != "Error" {
		t.Errorf("core's pattern found %q in %s; want the status Error", m, r.body)
	}
}

func TestErrorGolden(t *testing.T) {
	t.Parallel()
	b := setup(t, func(f *fakeBackend, _ *api.Options) { f.err = job.ErrNotFound })
	r := b.do(t, http.MethodGet, "/api/v1/jobs/"+id1, "")
	if r.status != http.StatusNotFound {
		t.Fatalf("status = %d; want 404", r.status)
	}
	checkGolden(t, "error_not_found", r.body)
}

func TestBadIDs(t *testing.T) {
	t.Parallel()
	ids := []struct {
		name string
		path string // as sent, escaped
	}{
		{name: "Short", path: "abc"},
		{name: "Uppercase", path: strings.ToUpper(id1)},
		{name: "TwentyThree", path: id1[:23]},
		{name: "TwentyFive", path: id1 + "0"},
		{name: "NonHex", path: "0123456789abcdef0123456g"},
		{name: "EmptyTime", path: id1 + "@"},
		{name: "LeadingZeroTime", path: id1 + "@01700000000"},
		{name: "NegativeTime", path: id1 + "@-1"},
		{name: "TwoAts", path: id1 + "@1@2"},
		{name: "EncodedTraversal", path: "..%2F..%2Fetc%2Fpasswd"},
		{name: "EncodedDots", path: "%2e%2e"},
		{name: "Dots", path: ".."},
		{name: "EncodedSlashInID", path: id1 + "%2Flog"},
		{name: "EncodedNUL", path: id1 + "%00"},
		{name: "Space", path: id1 + "%20"},
	}
	routes := []struct {
		name   string
		method string
		suffix string
		body   string
	}{
		{name: "Get", method: http.MethodGet},
		{name: "Action", method: http.MethodPost, body: `{"action":"stop"}`},
		{name: "Log", method: http.MethodGet, suffix: "/log"},
		{name: "Executions", method: http.MethodGet, suffix: "/executions"},
	}
	for _, id := range ids {
		for _, rt := range routes {
			t.Run(id.name+rt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, func(f *fakeBackend, _ *api.Options) {
					f.stats, f.log, f.page = fullStats(), []byte("secret log"), &job.Page{}
				})
				r := b.do(t, rt.method, "/api/v1/jobs/"+id.path+rt.suffix, rt.body)
				wantError(t, r, http.StatusBadRequest, 10013, "is not a job ID", "24 lowercase hex characters", "<id>@<unix time>")
				b.wantNoCalls(t)
			})
		}
	}
}

// TestPathTraversal sends paths that leave the route altogether: they must
// answer a JSON error and never reach the backend.
func TestPathTraversal(t *testing.T) {
	t.Parallel()
	paths := []struct {
		name string
		path string
	}{
		{name: "DotDot", path: "/api/v1/jobs/../../etc/passwd/log"},
		{name: "DotDotAfterID", path: "/api/v1/jobs/" + id1 + "/../../../etc/passwd"},
		{name: "DotDotIntoLog", path: "/api/v1/jobs/../jobs/" + id1 + "/log"},
		{name: "DoubleSlash", path: "/api/v1/jobs//etc/passwd/log"},
		{name: "EncodedSlashes", path: "/api/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd/log"},
		{name: "EncodedBackslash", path: "/api/v1/jobs/..%5C..%5Cetc%5Cpasswd/log"},
		{name: "Absolute", path: "/api/v1/jobs/%2Fetc%2Fpasswd/log"},
	}
	for _, tt := range paths {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.log = []byte("root:x:0:0") })
			r := b.do(t, http.MethodGet, tt.path, "")
			if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
				t.Errorf("status = %d; want 400 or 404 (body %s)", r.status, r.body)
			}
			code := map[int]int{http.StatusBadRequest: 10013, http.StatusNotFound: 10010}[r.status]
			wantError(t, r, r.status, code)
			if strings.Contains(string(r.body), "root:") {
				t.Errorf("the log leaked: %s", r.body)
			}
			b.wantNoCalls(t)
		})
	}
}

func TestOversizedBody(t *testing.T) {
	t.Parallel()
	const limit = 64
	big := `{"job":{"name":"DEMO","parameters":{"pad":"` + strings.Repeat("x", 200) + `"},"metadata":{"kind":"Generic"}}}`
	tests := []struct {
		name    string
		path    string
		body    string
		chunked bool // no Content-Length: the limit is found while reading
	}{
		{name: "SubmitWithLength", path: "/api/v1/jobs", body: big},
		{name: "SubmitChunked", path: "/api/v1/jobs", body: big, chunked: true},
		{name: "ActionChunked", path: "/api/v1/jobs/" + id1, body: `{"action":"stop","pad":"` + strings.Repeat("y", 100) + `"}`, chunked: true},
		{name: "ActionWithLength", path: "/api/v1/jobs/" + id1, body: `{"action":"stop","pad":"` + strings.Repeat("y", 100) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, o *api.Options) {
				o.MaxBodyBytes = limit
				f.stats = pendingStats()
			})
			req := b.newRequest(t, http.MethodPost, tt.path, tt.body)
			if tt.chunked {
				req.Body = io.NopCloser(io.MultiReader(strings.NewReader(tt.body)))
				req.ContentLength = -1
			}
			r := b.send(t, req)
			wantError(t, r, http.StatusRequestEntityTooLarge, 10000, "64 bytes")
			if !r.close {
				t.Errorf("the connection stays open; want it closed (the rest of the body is not read)")
			}
			b.wantNoCalls(t)
		})
	}
	t.Run("AtTheLimit", func(t *testing.T) {
		t.Parallel()
		body := `{"job":{"name":"DEMO","metadata":{"kind":"Generic"}}}`
		body += strings.Repeat(" ", limit-len(body))
		b := setup(t, func(f *fakeBackend, o *api.Options) {
			o.MaxBodyBytes = limit
			f.stats = pendingStats()
		})
		if r := b.do(t, http.MethodPost, "/api/v1/jobs", body); r.status != http.StatusAccepted {
			t.Fatalf("status = %d; want 202 (body %s)", r.status, r.body)
		}
	})
	t.Run("AuthBeforeBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(_ *fakeBackend, o *api.Options) { o.MaxBodyBytes = limit })
		req := b.newRequest(t, http.MethodPost, "/api/v1/jobs", big)
		req.Header.Set("Authorization", "Harbor-Secret wrong")
		wantError(t, b.send(t, req), http.StatusUnauthorized, 10011)
	})
	t.Run("DefaultLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		req := b.newRequest(t, http.MethodPost, "/api/v1/jobs", "")
		req.ContentLength = api.DefaultMaxBodyBytes + 1
		req.Body = io.NopCloser(io.LimitReader(zeros{}, req.ContentLength))
		wantError(t, b.send(t, req), http.StatusRequestEntityTooLarge, 10000, "1048576 bytes")
	})
	t.Run("RefusedByContentLengthUnread", func(t *testing.T) {
		t.Parallel()
		// Only "{" of the announced body is sent: the answer can only
		// come from the Content-Length alone.
		b := setup(t, func(_ *fakeBackend, o *api.Options) { o.MaxBodyBytes = limit })
		conn, err := net.Dial("tcp", b.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/jobs HTTP/1.1\r\nHost: berth\r\nAuthorization: Harbor-Secret %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", secret, limit+1)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer before the body was sent: %v", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, response{status: resp.StatusCode, header: resp.Header, body: body},
			http.StatusRequestEntityTooLarge, 10000)
	})
}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestQueryValidation(t *testing.T) {
	t.Parallel()
	execs := "/api/v1/jobs/" + id1 + "/executions"
	tests := []struct {
		name string
		path string
		want []string
	}{
		{name: "PageNumberZero", path: "/api/v1/jobs?page_number=0", want: []string{`"page_number"`, `"0"`, "from 1 to"}},
		{name: "PageNumberNegative", path: "/api/v1/jobs?page_number=-2", want: []string{`"page_number"`, "from 1 to"}},
		{name: "PageNumberText", path: "/api/v1/jobs?page_number=two", want: []string{`"page_number"`, `"two"`}},
		{name: "PageNumberHuge", path: "/api/v1/jobs?page_number=99999999999999999999", want: []string{`"page_number"`}},
		{name: "PageSizeZero", path: "/api/v1/jobs?page_size=0", want: []string{`"page_size"`, "from 1 to 1000"}},
		{name: "PageSizeTooLarge", path: "/api/v1/jobs?page_size=1001", want: []string{`"page_size"`, "from 1 to 1000"}},
		{name: "PageSizeFloat", path: "/api/v1/jobs?page_size=2.5", want: []string{`"page_size"`}},
		{name: "KindUnknown", path: "/api/v1/jobs?kind=Hourly", want: []string{`"kind"`, "Generic, Scheduled or Periodic"}},
		{name: "KindLowercase", path: "/api/v1/jobs?kind=scheduled", want: []string{`"kind"`}},
		{name: "CursorText", path: "/api/v1/jobs?cursor=abc", want: []string{`"cursor"`, "digits"}},
		{name: "CursorNegative", path: "/api/v1/jobs?cursor=-1", want: []string{`"cursor"`, "digits"}},
		{name: "CursorTooLong", path: "/api/v1/jobs?cursor=" + strings.Repeat("9", 30), want: []string{`"cursor"`}},
		{name: "StatusUnknown", path: "/api/v1/jobs?status=Done", want: []string{`"status"`, `"Done"`, "Pending, Scheduled, Running, Stopped, Error, Success"}},
		{name: "StatusLowercase", path: "/api/v1/jobs?status=running", want: []string{`"status"`}},
		{name: "StatusWithKindScheduled", path: "/api/v1/jobs?kind=Scheduled&status=Running", want: []string{`"status" and "name"`, "kind=Scheduled"}},
		{name: "NameWithKindPeriodic", path: "/api/v1/jobs?kind=Periodic&name=DEMO", want: []string{`"status" and "name"`, "kind=Periodic"}},
		{name: "ExecutionsPageSize", path: execs + "?page_size=0", want: []string{`"page_size"`, "from 1 to 1000"}},
		{name: "ExecutionsPageNumber", path: execs + "?page_number=x", want: []string{`"page_number"`}},
		{name: "ExecutionsNonDeadOnly", path: execs + "?non_dead_only=maybe", want: []string{`"non_dead_only"`, "true or false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.page = &job.Page{} })
			wantError(t, b.do(t, http.MethodGet, tt.path, ""), http.StatusBadRequest, 10013, tt.want...)
			b.wantNoCalls(t)
		})
	}
}

func TestQueryPassed(t *testing.T) {
	t.Parallel()
	execs := "/api/v1/jobs/" + id1 + "/executions"
	tests := []struct {
		name string
		path string
		want job.Query
	}{
		{name: "ListDefaults", path: "/api/v1/jobs", want: job.Query{PageNumber: 1, PageSize: job.DefaultPageSize}},
		{name: "ListEmptyValues", path: "/api/v1/jobs?page_number=&page_size=&kind=&cursor=",
			want: job.Query{PageNumber: 1, PageSize: job.DefaultPageSize}},
		{name: "ListAll", path: "/api/v1/jobs?page_number=3&page_size=1000&kind=Scheduled&cursor=42",
			want: job.Query{PageNumber: 3, PageSize: 1000, Kind: job.KindScheduled, Cursor: "42"}},
		{name: "ListPeriodic", path: "/api/v1/jobs?kind=Periodic&page_size=1",
			want: job.Query{PageNumber: 1, PageSize: 1, Kind: job.Periodic}},
		{name: "ListByStatusAndName", path: "/api/v1/jobs?status=Error&name=REPLICATION&kind=Generic&cursor=7",
			want: job.Query{PageNumber: 1, PageSize: job.DefaultPageSize, Kind: job.Generic, Status: job.Error, Name: "REPLICATION", Cursor: "7"}},
		{name: "ExecutionsCore", path: execs + "?page_number=1&page_size=100",
			want: job.Query{PageNumber: 1, PageSize: 100}},
		{name: "ExecutionsNonDeadOnly", path: execs + "?non_dead_only=true",
			want: job.Query{PageNumber: 1, PageSize: job.DefaultPageSize, NonDeadOnly: true}},
		{name: "ExecutionsNonDeadOnlyFalse", path: execs + "?non_dead_only=0&page_number=2",
			want: job.Query{PageNumber: 2, PageSize: job.DefaultPageSize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.page = &job.Page{} })
			if r := b.do(t, http.MethodGet, tt.path, ""); r.status != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %s)", r.status, r.body)
			}
			b.fake.mu.Lock()
			got := b.fake.query
			b.fake.mu.Unlock()
			if got != tt.want {
				t.Errorf("backend got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestStatsHealth(t *testing.T) {
	t.Parallel()
	healthy := &job.WorkerPool{WorkerPoolID: "h", Status: job.PoolHealthy}
	dead := &job.WorkerPool{WorkerPoolID: "d", Status: job.PoolDead}
	tests := []struct {
		name   string
		pools  []*job.WorkerPool
		status int
		want   string
	}{
		{name: "NoPool", pools: nil, status: 500, want: "no worker pool is known"},
		{name: "EmptyList", pools: []*job.WorkerPool{}, status: 500, want: "no worker pool is known"},
		{name: "OnlyDead", pools: []*job.WorkerPool{dead, dead}, status: 500, want: "none of the 2 known worker pools is healthy"},
		{name: "NilEntry", pools: []*job.WorkerPool{nil}, status: 500, want: "none of the 1"},
		{name: "OneHealthy", pools: []*job.WorkerPool{dead, healthy}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) { f.pools = tt.pools })
			r := b.do(t, http.MethodGet, "/api/v1/stats", "")
			if tt.status != 200 {
				wantError(t, r, tt.status, 10004, tt.want)
				return
			}
			if r.status != 200 {
				t.Fatalf("status = %d; want 200 (body %s)", r.status, r.body)
			}
			if !strings.Contains(string(r.body), `"status":"Dead"`) {
				t.Errorf("dead pools must still be listed: %s", r.body)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		method    string
		path      string
		status    int
		code      int
		wantAllow string
	}{
		{name: "UnknownPath", method: http.MethodGet, path: "/api/v1/nothing", status: 404, code: 10010},
		{name: "Root", method: http.MethodGet, path: "/", status: 404, code: 10010},
		{name: "OldVersion", method: http.MethodGet, path: "/api/v0/jobs", status: 404, code: 10010},
		{name: "TrailingSlash", method: http.MethodGet, path: "/api/v1/jobs/", status: 404, code: 10010},
		{name: "StatsTrailingSlash", method: http.MethodGet, path: "/api/v1/stats/", status: 404, code: 10010},
		{name: "UnknownSubresource", method: http.MethodGet, path: "/api/v1/jobs/" + id1 + "/steps", status: 404, code: 10010},
		{name: "WrongCase", method: http.MethodGet, path: "/API/v1/jobs", status: 404, code: 10010},
		{name: "DeleteJob", method: http.MethodDelete, path: "/api/v1/jobs/" + id1, status: 405, code: 10013, wantAllow: "GET, POST"},
		{name: "PutJobs", method: http.MethodPut, path: "/api/v1/jobs", status: 405, code: 10013, wantAllow: "GET, POST"},
		{name: "PostLog", method: http.MethodPost, path: "/api/v1/jobs/" + id1 + "/log", status: 405, code: 10013, wantAllow: "GET"},
		{name: "PostStats", method: http.MethodPost, path: "/api/v1/stats", status: 405, code: 10013, wantAllow: "GET, HEAD"},
		{name: "OptionsConfig", method: http.MethodOptions, path: "/api/v1/config", status: 405, code: 10013, wantAllow: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			r := b.do(t, tt.method, tt.path, "")
			wantError(t, r, tt.status, tt.code)
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q; want %q", got, tt.wantAllow)
			}
			b.wantNoCalls(t)
		})
	}
}

func TestPanicIsContained(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		code   int
	}{
		{name: "Submit", method: http.MethodPost, path: "/api/v1/jobs", body: `{"job":{"name":"DEMO","metadata":{"kind":"Generic"}}}`, code: 10003},
		{name: "Get", method: http.MethodGet, path: "/api/v1/jobs/" + id1, code: 10005},
		{name: "Retry", method: http.MethodPost, path: "/api/v1/jobs/" + id1, body: `{"action":"retry"}`, code: 10007},
		{name: "Stats", method: http.MethodGet, path: "/api/v1/stats", code: 10004},
		{name: "Config", method: http.MethodGet, path: "/api/v1/config", code: 10001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(f *fakeBackend, _ *api.Options) {
				f.panics.Store(1)
				f.stats = pendingStats()
				f.pools = []*job.WorkerPool{{WorkerPoolID: "p", Status: job.PoolHealthy}}
			})
			details := wantError(t, b.do(t, tt.method, tt.path, tt.body), http.StatusInternalServerError, tt.code)
			if strings.Contains(details, "boom") {
				t.Errorf("details show the panic's value: %q", details)
			}
			logs := b.logs.String()
			for _, want := range []string{"[ERROR]", "panic", "boom in", "goroutine", "api_test.(*fakeBackend)"} {
				if !strings.Contains(logs, want) {
					t.Errorf("the log lacks %q:\n%s", want, logs)
				}
			}
			r := b.do(t, tt.method, tt.path, tt.body)
			if r.status >= 300 {
				t.Errorf("the request after the panic: status = %d (body %s); want success", r.status, r.body)
			}
		})
	}
}

func TestClientGoneIsQuiet(t *testing.T) {
	t.Parallel()
	b := setup(t, func(f *fakeBackend, _ *api.Options) { f.block = true })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-b.fake.entered
		cancel()
	}()
	req := b.newRequest(t, http.MethodGet, "/api/v1/jobs/"+id1, "").WithContext(ctx)
	if resp, err := b.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request succeeded with status %d; want it cancelled", resp.StatusCode)
	}
	// The server writes its request log after the handler returns.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.logs.String(), "[DEBUG] request:") {
		if time.Now().After(deadline) {
			t.Fatalf("no request log after the client left:\n%s", b.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "client went away") {
		t.Errorf("the log does not say that the client went away:\n%s", logs)
	}
	if strings.Contains(logs, "[ERROR]") {
		t.Errorf("a client that went away was logged as an error:\n%s", logs)
	}
	b.wantCalls(t, "Get "+id1)
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	b := setup(t, func(f *fakeBackend, _ *api.Options) { f.stats = pendingStats() })
	const marker = "body-marker-4711"
	r := b.do(t, http.MethodPost, "/api/v1/jobs",
		`{"job":{"name":"DEMO","parameters":{"password":"`+marker+`"},"metadata":{"kind":"Generic"}}}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("status = %d; want 202 (body %s)", r.status, r.body)
	}
	b.do(t, http.MethodGet, "/api/v1/nothing", "")
	logs := b.logs.String()
	for _, want := range []string{
		"[DEBUG] request: method=POST path=/api/v1/jobs status=202 duration=",
		"[DEBUG] request: method=GET path=/api/v1/nothing status=404 duration=",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	for _, secretish := range []string{secret, marker, "Authorization", "Harbor-Secret"} {
		if strings.Contains(logs, secretish) {
			t.Errorf("the log holds %q:\n%s", secretish, logs)
		}
	}
}

func TestNilLogger(t *testing.T) {
	t.Parallel()
	b := setup(t, func(f *fakeBackend, o *api.Options) {
		o.Logger = nil
		f.err = errors.New("fails")
	})
	wantError(t, b.do(t, http.MethodGet, "/api/v1/jobs/"+id1, ""), http.StatusInternalServerError, 10005, "fails")
}

func ptr(s string) *string { return &s }

func TestMissingAction(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{}`, `{"action":""}`, `{"action":null}`} {
		t.Run(body, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			r := b.do(t, http.MethodPost, "/api/v1/jobs/"+id1, body)
			wantError(t, r, http.StatusBadRequest, 10013, `field "action" is missing or empty`)
			b.wantNoCalls(t)
		})
	}
}

func TestHeadStatsNeedsNoAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, func(f *fakeBackend, _ *api.Options) {
		f.pools = []*job.WorkerPool{{WorkerPoolID: "p", Status: job.PoolHealthy}}
	})
	req := b.newRequest(t, http.MethodHead, "/api/v1/stats", "")
	req.Header.Del("Authorization")
	r := b.send(t, req)
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("HEAD /api/v1/stats = %d with %d bytes; want 200 and no body", r.status, len(r.body))
	}
	b.wantCalls(t, "WorkerPools")
	// Other HEADs still need the secret.
	req = b.newRequest(t, http.MethodHead, "/api/v1/config", "")
	req.Header.Del("Authorization")
	if r := b.send(t, req); r.status != http.StatusUnauthorized {
		t.Errorf("HEAD /api/v1/config without a secret = %d; want 401", r.status)
	}
}

// A flood of bad requests is logged at INFO, at most a few a minute, with
// the count of the rest when the next minute opens; never at ERROR.
func TestClientErrorsAreRateLimited(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := setup(t, func(_ *fakeBackend, o *api.Options) { o.Now = clock })
	const flood = 100
	for i := 0; i < flood; i++ {
		b.do(t, http.MethodPost, "/api/v1/jobs/"+id1, `{"action":"reboot"}`)
	}
	logs := b.logs.String()
	if n := strings.Count(logs, "request refused"); n == 0 || n >= flood/2 {
		t.Fatalf("%d of %d refused requests logged; want a few", n, flood)
	}
	if strings.Contains(logs, "[ERROR]") {
		t.Errorf("a client error was logged at ERROR:\n%s", logs)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	b.do(t, http.MethodGet, "/api/v1/jobs/nope", "")
	logs = b.logs.String()
	if !regexp.MustCompile(`refused requests not logged: too many in a short time: count=\d+`).MatchString(logs) {
		t.Errorf("the next minute does not report the requests left out:\n%s", logs)
	}
	if !strings.Contains(logs, `request refused: method=GET path=/api/v1/jobs/nope status=400`) {
		t.Errorf("the next minute logs refused requests again:\n%s", logs)
	}
}
