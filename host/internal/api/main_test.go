package api_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/api"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/jsondiff"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	secret = "s3cret-for-tests"
	id1    = "0123456789abcdef01234567"
	id2    = "fedcba9876543210fedcba98"
	exec1  = id1 + "@1700000000"
)

// harborMessages are Harbor's message texts per code, written down here
// independently of the package.
var harborMessages = map[int]string{
	10000: "read request body failed with error",
	10001: "handle json data failed with error",
	10002: "missing backend controller to handle the requests",
	10003: "launch job failed with error",
	10004: "check stats of server failed with error",
	10005: "get job stats failed with error",
	10006: "stop job failed with error",
	10007: "retry job failed with error",
	10008: "unknown job action name",
	10009: "failed to get the job log",
	10010: "object is not found",
	10011: "unauthorized",
	10012: "conflict",
	10013: "bad request",
	10014: "failed to get scheduled jobs",
	10015: "failed to get periodic executions",
	10016: "mismatch job status",
}

// fakeBackend records its calls and answers what the test configured.
// Configure it before the first request.
type fakeBackend struct {
	stats *job.Stats
	page  *job.Page
	log   []byte
	pools []*job.WorkerPool
	cfg   job.PoolConfig
	err   error
	// panics is how many calls still panic.
	panics atomic.Int32
	// block makes calls wait for their context and return its error;
	// entered is closed (once) when the first blocking call starts.
	block   bool
	entered chan struct{}

	mu      sync.Mutex
	calls   []string
	request *job.RequestJob
	query   job.Query
}

func (f *fakeBackend) enter(ctx context.Context, call string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if f.panics.Add(-1) >= 0 {
		panic("boom in " + call)
	}
	if f.block {
		close(f.entered)
		<-ctx.Done()
		return fmt.Errorf("fake: %s: %w", call, ctx.Err())
	}
	return f.err
}

func (f *fakeBackend) Submit(ctx context.Context, req *job.RequestJob) (*job.Stats, error) {
	f.mu.Lock()
	f.request = req
	f.mu.Unlock()
	if err := f.enter(ctx, "Submit "+req.Name); err != nil {
		return nil, err
	}
	return f.stats, nil
}

func (f *fakeBackend) Get(ctx context.Context, id string) (*job.Stats, error) {
	if err := f.enter(ctx, "Get "+id); err != nil {
		return nil, err
	}
	return f.stats, nil
}

func (f *fakeBackend) Action(ctx context.Context, id string, action job.Action) error {
	return f.enter(ctx, "Action "+id+" "+string(action))
}

func (f *fakeBackend) Log(ctx context.Context, id string) ([]byte, error) {
	if err := f.enter(ctx, "Log "+id); err != nil {
		return nil, err
	}
	return f.log, nil
}

func (f *fakeBackend) List(ctx context.Context, q job.Query) (*job.Page, error) {
	f.mu.Lock()
	f.query = q
	f.mu.Unlock()
	if err := f.enter(ctx, "List"); err != nil {
		return nil, err
	}
	return f.page, nil
}

func (f *fakeBackend) Executions(ctx context.Context, id string, q job.Query) (*job.Page, error) {
	f.mu.Lock()
	f.query = q
	f.mu.Unlock()
	if err := f.enter(ctx, "Executions "+id); err != nil {
		return nil, err
	}
	return f.page, nil
}

func (f *fakeBackend) WorkerPools(ctx context.Context) ([]*job.WorkerPool, error) {
	if err := f.enter(ctx, "WorkerPools"); err != nil {
		return nil, err
	}
	return f.pools, nil
}

func (f *fakeBackend) Config() job.PoolConfig {
	_ = f.enter(context.Background(), "Config")
	return f.cfg
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// bundle is a running API over a fake backend.
type bundle struct {
	fake *fakeBackend
	srv  *httptest.Server
	logs *procs.Buffer
}

// setup starts the API on a real listener. configure, if not nil, sets up
// the fake and the options before the server starts.
func setup(t *testing.T, configure func(*fakeBackend, *api.Options)) *bundle {
	t.Helper()
	b := &bundle{
		fake: &fakeBackend{entered: make(chan struct{})},
		logs: &procs.Buffer{},
	}
	opts := api.Options{
		Secret: secret,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: b.logs}),
	}
	if configure != nil {
		configure(b.fake, &opts)
	}
	b.srv = httptest.NewServer(api.New(b.fake, opts))
	t.Cleanup(b.srv.Close)
	return b
}

// newRequest builds a request to path (which may hold a query) with the
// right secret.
func (b *bundle) newRequest(t *testing.T, method, path, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, r)
	if err != nil {
		t.Fatalf("NewRequest %s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Harbor-Secret "+secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
	close  bool // the server closes the connection after the answer
}

func (b *bundle) send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close}
}

// do sends an authenticated request.
func (b *bundle) do(t *testing.T, method, path, body string) response {
	t.Helper()
	return b.send(t, b.newRequest(t, method, path, body))
}

// wantNoCalls fails if the backend was called.
func (b *bundle) wantNoCalls(t *testing.T) {
	t.Helper()
	if calls := b.fake.Calls(); len(calls) != 0 {
		t.Errorf("backend was called: %q; want no call", calls)
	}
}

// wantCalls fails unless the backend got exactly these calls.
func (b *bundle) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if calls := b.fake.Calls(); !reflect.DeepEqual(calls, want) {
		t.Errorf("backend calls = %q; want %q", calls, want)
	}
}

// wantError checks an error answer: status, JSON content type, exactly
// the keys code, message and details, Harbor's message for the code, and
// details holding every string of contains. It returns the details.
func wantError(t *testing.T, r response, status, code int, contains ...string) string {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d; want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.body)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"code", "details", "message"}) {
		t.Errorf("error body keys = %q; want code, details, message: %s", keys, r.body)
	}
	if got, _ := m["code"].(float64); int(got) != code {
		t.Errorf("code = %v; want %d (body %s)", m["code"], code, r.body)
	}
	if got, _ := m["message"].(string); got != harborMessages[code] {
		t.Errorf("message = %q; want %q", got, harborMessages[code])
	}
	details, _ := m["details"].(string)
	if details == "" {
		t.Errorf("details are empty: %s", r.body)
	}
	for _, c := range contains {
		if !strings.Contains(details, c) {
			t.Errorf("details = %q; want them to contain %q", details, c)
		}
	}
	return details
}

// checkGolden compares a JSON body with testdata/<name>.json field by
// field; with -update it rewrites the file instead.
func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	if *update {
		pretty, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(pretty, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	var want any
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("golden file %s is not JSON: %v", path, err)
	}
	for _, d := range jsondiff.Diff("$", want, got) {
		t.Errorf("%s: %s", path, d)
	}
}

// Fixtures.

// fullStats has every field set.
func fullStats() *job.Stats {
	return &job.Stats{
		ID:              id1,
		Status:          job.Error,
		Name:            "DEMO",
		Kind:            job.Generic,
		Unique:          true,
		RefLink:         job.RefLink(id1),
		CronSpec:        "0 */5 * * * *",
		EnqueueTime:     1700000000,
		UpdateTime:      1700000100,
		RunAt:           1700000050,
		CheckIn:         "half way",
		CheckInAt:       1700000060,
		DieAt:           1700086400,
		WebHookURL:      "http://core:8080/service/notifications/tasks/42",
		UpstreamJobID:   id2,
		NumericPolicyID: 7,
		Parameters:      job.Parameters{"image": "library/nginx", "dry_run": true, "count": 3.0},
		Revision:        1700000040,
		Ack:             &job.Ack{Status: job.Running, Revision: 1700000040, CheckInAt: 1700000060},
	}
}

// pendingStats is what a submission of a Generic job answers.
func pendingStats() *job.Stats {
	return &job.Stats{
		ID:          id2,
		Status:      job.Pending,
		Name:        "DEMO",
		Kind:        job.Generic,
		RefLink:     job.RefLink(id2),
		EnqueueTime: 1700000000,
		UpdateTime:  1700000000,
		WebHookURL:  "http://core:8080/service/notifications/tasks/43",
		Parameters:  job.Parameters{"sleep": 1.0},
	}
}

// executionStats is an execution of periodic policy id1.
func executionStats(t int64, status job.Status) *job.Stats {
	id := job.ExecutionID(id1, t)
	return &job.Stats{
		ID:            id,
		Status:        status,
		Name:          "SCHEDULER",
		Kind:          job.KindScheduled,
		RefLink:       job.RefLink(id),
		EnqueueTime:   t,
		UpdateTime:    t + 5,
		RunAt:         t,
		UpstreamJobID: id1,
		Parameters:    job.Parameters{"callback_func": "GC", "params": "{}"},
		Revision:      t,
	}
}
