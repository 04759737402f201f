package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/client"
	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(redistest.WithCleanup(m),
		// A wake-up (gocraft/work's Drain) in flight when a host stops
		// mid-job never returns; see queue.Pool.Wake.
		goleak.IgnoreTopFunction("github.com/gocraft/work.(*worker).drain"),
		goleak.IgnoreAnyFunction("github.com/gocraft/work.(*WorkerPool).Drain"))
}

// binary is the berthctl binary, built once per test binary.
func binary(t *testing.T) string { return plugintest.Command(t, "host/cmd/berthctl") }

// result is one run of berthctl.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// lines are the non-empty lines of stdout.
func (r result) lines() []string {
	var out []string
	for l := range strings.SplitSeq(r.stdout, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// ctl runs berthctl against one host.
type ctl struct {
	h   *hosttest.Host
	env []string // BERTH_URL and CORE_SECRET
}

// setup starts a real host with the DEMO plugin, changed by mutate.
func setup(t *testing.T, mutate func(*config.Config)) *ctl {
	t.Helper()
	binary(t)
	h := hosttest.NewCluster(t, "demo").Start(t, mutate)
	return &ctl{h: h, env: []string{"BERTH_URL=" + h.URL, "CORE_SECRET=" + hosttest.Secret}}
}

// output is a process's output, safe to read while it is written.
type output struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // a signal after each write
}

func newOutput() *output { return &output{wrote: make(chan struct{}, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer func() {
		select {
		case o.wrote <- struct{}{}:
		default:
		}
	}()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output holds want, at most timeout.
func (o *output) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !strings.Contains(o.String(), want) {
		select {
		case <-o.wrote:
		case <-timer.C:
			t.Fatalf("no %q in the output within %s: %q", want, timeout, o.String())
		}
	}
}

// command makes a berthctl process with env (and PATH, HOME) only.
func command(ctx context.Context, t *testing.T, env []string, stdin string, args ...string) (*exec.Cmd, *output, *output) {
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	stdout, stderr := newOutput(), newOutput()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd, stdout, stderr
}

func wait(t *testing.T, cmd *exec.Cmd, stdout, stderr *output) result {
	t.Helper()
	err := cmd.Wait()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
	default:
		t.Fatalf("berthctl %v: %v\n%s", cmd.Args[1:], err, r)
	}
	return r
}

// runEnv runs berthctl to its end (at most a minute) with env.
func runEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := command(ctx, t, env, stdin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return wait(t, cmd, stdout, stderr)
}

// run runs berthctl against the host.
func (c *ctl) run(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, c.env, "", args...)
}

// start starts berthctl against the host and returns the process, its
// stdout and what waits for its end.
func (c *ctl) start(t *testing.T, args ...string) (*os.Process, *output, func() result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd, stdout, stderr := command(ctx, t, c.env, "", args...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	var r result
	t.Cleanup(func() { once.Do(func() { r = wait(t, cmd, stdout, stderr) }); cancel() })
	return cmd.Process, stdout, func() result {
		t.Helper()
		once.Do(func() { r = wait(t, cmd, stdout, stderr) })
		return r
	}
}

// expect fails the test unless r exited with code.
func expect(t *testing.T, r result, code int, what string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: want exit %d, got %s", what, code, r)
	}
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// submit submits a DEMO job through berthctl and returns its ID.
func (c *ctl) submit(t *testing.T, args ...string) string {
	t.Helper()
	r := c.run(t, append([]string{"submit", "DEMO", "-p", "image=demo"}, args...)...)
	expect(t, r, 0, "submit")
	id := strings.TrimSpace(r.stdout)
	if !idPattern.MatchString(id) {
		t.Fatalf("submit printed %q, want a job ID", r.stdout)
	}
	return id
}

// sameJSON fails unless a and b are the same JSON.
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, b)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("%s:\n%s\nwant the API's\n%s", what, a, b)
	}
}

func TestSubmitGetAndWait(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)

	r := c.run(t, "submit", "DEMO", "-p", "image=demo", "-p", "hold_seconds=0", "--wait", "--interval", "20ms")
	expect(t, r, 0, "submit --wait of a job that succeeds")
	lines := r.lines()
	if len(lines) != 2 || !idPattern.MatchString(lines[0]) || lines[1] != "Success" {
		t.Fatalf("submit --wait printed %q, want the ID and Success", lines)
	}
	id := lines[0]

	r = c.run(t, "get", id)
	expect(t, r, 0, "get")
	for _, want := range []string{"ID  ", id, "NAME ", "DEMO", "STATUS", "Success", "progress data: %60", `"hold_seconds":0`, `"image":"demo"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get: no %q in\n%s", want, r.stdout)
		}
	}
	r = c.run(t, "-o", "json", "get", id)
	expect(t, r, 0, "get -o json")
	sameJSON(t, "get -o json", []byte(r.stdout), c.h.Do(t, http.MethodGet, "/api/v1/jobs/"+id, hosttest.Auth, nil).Body)

	r = c.run(t, "submit", "DEMO", "-p", "image=demo", "-p", "fail=true", "-p", "hold_seconds=0", "--wait", "--interval", "20ms")
	expect(t, r, 1, "submit --wait of a job that fails")
	if lines := r.lines(); len(lines) != 2 || lines[1] != "Error" {
		t.Fatalf("submit --wait printed %q, want the ID and Error", lines)
	}

	// Parameters from stdin and flags, JSON values kept; -o json prints the
	// submission's answer.
	r = runEnv(t, c.env, `{"image":"demo","hold_seconds":3600,"log_lines":1}`,
		"-o", "json", "submit", "DEMO", "--params-file", "-", "-p", "log_lines=2", "--kind", "scheduled", "--delay", "600", "--unique")
	expect(t, r, 0, "submit --params-file - -o json")
	var env client.Envelope
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env.Job == nil || env.Job.Status != client.Scheduled {
		t.Fatalf("submit -o json printed %q (%v), want the API's answer of a Scheduled job", r.stdout, err)
	}
	st := c.h.Get(t, env.Job.ID)
	if st.Kind != client.KindScheduled || !st.Unique || st.Parameters["log_lines"] != float64(2) ||
		st.Parameters["hold_seconds"] != float64(3600) || st.RunAt-st.EnqueueTime < 590 {
		t.Fatalf("the submitted job: %+v", st)
	}
	// An identical unique job is refused, the holder named.
	r = runEnv(t, c.env, `{"image":"demo","hold_seconds":3600,"log_lines":2}`,
		"submit", "DEMO", "--params-file", "-", "--delay", "600", "--unique")
	expect(t, r, 3, "a duplicate unique job")
	if !strings.Contains(r.stderr, "409") || !strings.Contains(r.stderr, env.Job.ID) {
		t.Fatalf("a duplicate unique job: %s", r)
	}
}

func TestWatchExitsByTheJobsStatus(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		id := c.submit(t, "-p", "hold_seconds=1")
		r := c.run(t, "watch", id, "--interval", "20ms")
		expect(t, r, 0, "watch of a job that succeeds")
		lines := r.lines()
		last := lines[len(lines)-1]
		if !strings.Contains(last, "Success") || !strings.Contains(last, "progress data: %60") {
			t.Fatalf("watch: the last line is %q, want Success and the last check-in", last)
		}
		running, checkin := -1, false
		for i, l := range lines {
			if i > 0 && l == lines[i-1] {
				t.Errorf("watch printed %q twice in a row", l)
			}
			if strings.Contains(l, "Running") && running < 0 {
				running = i
			}
			checkin = checkin || strings.Contains(l, "Running") && strings.Contains(l, "progress data: %60")
		}
		if running < 0 || running == len(lines)-1 || !checkin {
			t.Fatalf("watch printed\n%s\nwant Running, its check-in, then Success", r.stdout)
		}
	})
	t.Run("Error", func(t *testing.T) {
		t.Parallel()
		id := c.submit(t, "-p", "hold_seconds=0", "-p", "fail=true")
		r := c.run(t, "watch", id, "--interval", "20ms")
		expect(t, r, 1, "watch of a job that fails")
		if lines := r.lines(); !strings.Contains(lines[len(lines)-1], "Error") {
			t.Fatalf("watch: %s", r)
		}
	})
	t.Run("Stopped", func(t *testing.T) {
		t.Parallel()
		id := c.submit(t, "-p", "hold_seconds=3600")
		c.h.WaitStatus(t, id, client.Running, 30*time.Second)
		_, out, watch := c.start(t, "-o", "json", "watch", id, "--interval", "20ms")
		out.waitFor(t, `"status":"Running"`, 30*time.Second) // watch saw the job run
		r := c.run(t, "stop", id)
		expect(t, r, 0, "stop")
		if strings.TrimSpace(r.stdout) != id+": stop accepted" {
			t.Fatalf("stop printed %q", r.stdout)
		}
		r = watch()
		expect(t, r, 2, "watch of a job that is stopped")
		lines := r.lines()
		var first, last client.Envelope
		if json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil ||
			first.Job.Status != client.Running || last.Job.Status != client.Stopped {
			t.Fatalf("watch -o json: %s", r)
		}
	})
	t.Run("Interrupted", func(t *testing.T) {
		t.Parallel()
		id := c.submit(t, "-p", "hold_seconds=3600")
		proc, out, watch := c.start(t, "watch", id, "--interval", "20ms")
		out.waitFor(t, "Running", 30*time.Second)
		if err := proc.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		r := watch()
		expect(t, r, 130, "watch interrupted")
		oneLineWith(t, "watch interrupted", r, "interrupted")
		if st := c.h.Get(t, id); st.Status != client.Running {
			t.Fatalf("the job is %s after its watch was interrupted, want Running", st.Status)
		}
	})
}

func TestCancelAndRetry(t *testing.T) {
	t.Parallel()
	// Backoffs of an hour: the only new run of a failed job is retry's.
	c := setup(t, func(cfg *config.Config) {
		cfg.Retry.BackoffBase = config.Duration(time.Hour)
		cfg.Retry.BackoffMax = config.Duration(time.Hour)
	})
	id := c.submit(t, "-p", "hold_seconds=3600")
	c.h.WaitStatus(t, id, client.Running, 30*time.Second)
	expect(t, c.run(t, "cancel", id), 0, "cancel")
	expect(t, c.run(t, "watch", id, "--interval", "20ms"), 2, "watch of a cancelled job")

	failed := c.submit(t, "-p", "hold_seconds=0", "-p", "fail=true")
	first := c.h.WaitStatus(t, failed, client.Error, 30*time.Second)
	r := c.run(t, "retry", failed)
	expect(t, r, 0, "retry of a job in Error")
	c.h.Wait(t, failed, 30*time.Second, "a new run", func(s *client.Stats) bool { return s.Revision > first.Revision })

	r = c.run(t, "retry", id)
	expect(t, r, 3, "retry of a Stopped job")
	if !strings.Contains(r.stderr, "409") || !strings.Contains(r.stderr, "Stopped") {
		t.Fatalf("retry of a Stopped job: %s", r)
	}
}

func TestLogFollowPrintsEachLineOnce(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)
	id := c.h.Submit(t, "DEMO", map[string]any{"image": "demo", "hold_seconds": 3600, "log_lines": 5}, nil).ID
	_, out, follow := c.start(t, "log", "-f", id, "--interval", "20ms")
	// The job holds for an hour: what log -f prints now, it printed while
	// the job ran.
	out.waitFor(t, "holding", 30*time.Second)
	if st := c.h.Get(t, id); st.Status != client.Running {
		t.Fatalf("the job is %s, want Running", st.Status)
	}
	if r := c.h.Action(t, id, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	r := follow()
	expect(t, r, 0, "log -f of a job that ended")
	for _, want := range []string{"DEMO job started", "log line 1 of 5", "log line 5 of 5", "holding", "received op command: stop"} {
		if n := strings.Count(r.stdout, want); n != 1 {
			t.Errorf("log -f printed %q %d times, want once:\n%s", want, n, r.stdout)
		}
	}
	if st := c.h.Get(t, id); st.Status != client.Stopped {
		t.Fatalf("log -f ended with the job %s", st.Status)
	}
	if log := c.h.LogText(t, id); r.stdout != log {
		t.Fatalf("log -f printed\n%s\nwant the whole log once\n%s", r.stdout, log)
	}
	r = c.run(t, "log", id)
	expect(t, r, 0, "log")
	if log := c.h.LogText(t, id); r.stdout != log {
		t.Fatalf("log printed\n%s\nwant the API's\n%s", r.stdout, log)
	}
}

func TestListFollowsCursors(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)
	ids := map[string]bool{}
	for range 5 {
		st := c.h.Submit(t, "DEMO", map[string]any{"image": "demo", "hold_seconds": 0}, nil)
		ids[st.ID] = true
	}
	for id := range ids {
		c.h.WaitStatus(t, id, client.Success, 30*time.Second)
	}
	// rows are the job IDs of a listing's table.
	rows := func(r result) []string {
		t.Helper()
		lines := r.lines()
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") {
			t.Fatalf("list printed no table: %s", r)
		}
		var out []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if !ids[f[0]] || f[1] != "DEMO" || f[3] != "Success" {
				t.Fatalf("list: row %q is not one of the jobs", l)
			}
			out = append(out, f[0])
		}
		return out
	}
	filter := []string{"list", "--name", "DEMO", "--status", "success", "--page-size", "2"}

	r := c.run(t, filter...)
	expect(t, r, 0, "list")
	page1 := rows(r)
	m := regexp.MustCompile(`add --cursor (\d+)`).FindStringSubmatch(r.stderr)
	if len(page1) != 2 || m == nil {
		t.Fatalf("list of a page of 2: %s", r)
	}
	r = c.run(t, append(filter, "--cursor", m[1])...)
	expect(t, r, 0, "list --cursor")
	if page2 := rows(r); len(page2) != 2 || page2[0] == page1[0] || page2[0] == page1[1] {
		t.Fatalf("the second page %q repeats the first %q", page2, page1)
	}

	r = c.run(t, append(filter, "--all")...)
	expect(t, r, 0, "list --all")
	all := rows(r)
	seen := map[string]bool{}
	for _, id := range all {
		seen[id] = true
	}
	if len(all) != 5 || len(seen) != 5 || r.stderr != "" {
		t.Fatalf("list --all walked %q, want the 5 jobs once: %s", all, r)
	}

	r = c.run(t, append(filter, "--all", "--max-pages", "2")...)
	expect(t, r, 0, "list --all --max-pages 2")
	if got := rows(r); len(got) != 4 || !strings.Contains(r.stderr, "stopped after 2 pages") {
		t.Fatalf("list --all --max-pages 2: %s", r)
	}

	r = c.run(t, append([]string{"-o", "json"}, append(filter, "--all")...)...)
	expect(t, r, 0, "list -o json --all")
	var list []client.Envelope
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 5 {
		t.Fatalf("list -o json --all: %v: %s", err, r)
	}
	for _, e := range list {
		if !ids[e.Job.ID] {
			t.Fatalf("list -o json --all: %s is not one of the jobs", e.Job.ID)
		}
	}
}

func TestListScheduledJobsByPage(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)
	ids := map[string]bool{}
	for range 3 {
		ids[c.submit(t, "-p", "hold_seconds=0", "--delay", "600")] = true
	}
	rows := func(r result) int {
		t.Helper()
		n := 0
		for _, l := range r.lines()[1:] {
			if f := strings.Fields(l); !ids[f[0]] || f[2] != "Scheduled" || f[3] != "Scheduled" {
				t.Fatalf("list --kind Scheduled: row %q", l)
			}
			n++
		}
		return n
	}
	r := c.run(t, "list", "--kind", "Scheduled", "--page-size", "2")
	expect(t, r, 0, "list --kind Scheduled")
	if n := rows(r); n != 2 || !strings.Contains(r.stderr, "add --page 2") {
		t.Fatalf("the first page of 2: %s", r)
	}
	r = c.run(t, "list", "--kind", "Scheduled", "--page-size", "2", "--page", "2")
	expect(t, r, 0, "list --kind Scheduled --page 2")
	if n := rows(r); n != 1 || r.stderr != "" {
		t.Fatalf("the last page: %s", r)
	}
	r = c.run(t, "list", "--kind", "Scheduled", "--page-size", "1", "--all")
	expect(t, r, 0, "list --kind Scheduled --all")
	if n := rows(r); n != 3 || r.stderr != "" {
		t.Fatalf("list --all by pages of 1: %s", r)
	}
}

func TestExecutionsOfAPeriodicPolicy(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)
	policy := c.submit(t, "-p", "hold_seconds=0", "--cron", "* * * * * *")

	r := c.run(t, "list", "--kind", "Periodic")
	expect(t, r, 0, "list --kind Periodic")
	if !strings.Contains(r.stdout, policy) {
		t.Fatalf("list --kind Periodic: %s", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = c.run(t, "executions", policy)
		expect(t, r, 0, "executions")
		if strings.Contains(r.stdout, policy+"@") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no execution of %s listed within 30s: %s", policy, r)
		}
	}
	r = c.run(t, "-o", "json", "executions", policy, "--page-size", "1")
	expect(t, r, 0, "executions -o json")
	var list []client.Envelope
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 ||
		list[0].Job.UpstreamJobID != policy || !strings.HasPrefix(list[0].Job.ID, policy+"@") {
		t.Fatalf("executions -o json: %v: %s", err, r)
	}
	expect(t, c.run(t, "stop", policy), 0, "stop of the policy")
	r = c.run(t, "list", "--kind", "Periodic")
	expect(t, r, 0, "list --kind Periodic after stop")
	if strings.Contains(r.stdout, policy) {
		t.Fatalf("the stopped policy is still listed: %s", r)
	}
}

func TestStatsAndConfig(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)
	pools, err := mustClient(t, c.h.URL).WorkerPools(t.Context())
	if err != nil || len(pools) != 1 {
		t.Fatalf("WorkerPools = %v, %v", pools, err)
	}
	// No secret: the worker pools need none.
	r := runEnv(t, []string{"BERTH_URL=" + c.h.URL}, "", "stats")
	expect(t, r, 0, "stats")
	lines := r.lines()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "WORKER POOL") {
		t.Fatalf("stats: %s", r)
	}
	f := strings.Fields(lines[1])
	if f[0] != pools[0].WorkerPoolID || f[1] != client.PoolHealthy || !strings.Contains(lines[1], "DEMO") {
		t.Fatalf("stats: the row %q is not the pool %+v", lines[1], pools[0])
	}
	r = c.run(t, "stats", "-o", "json")
	expect(t, r, 0, "stats -o json")
	sameJSON(t, "stats -o json", []byte(r.stdout), c.h.Do(t, http.MethodGet, "/api/v1/stats", "", nil).Body)

	r = c.run(t, "config")
	expect(t, r, 0, "config")
	if !regexp.MustCompile(`(?m)^NAMESPACE +` + regexp.QuoteMeta(c.h.Config.WorkerPool.RedisPool.Namespace) + `$`).MatchString(r.stdout) {
		t.Fatalf("config: %s", r)
	}
	r = c.run(t, "config", "-o", "json")
	expect(t, r, 0, "config -o json")
	sameJSON(t, "config -o json", []byte(r.stdout), c.h.Do(t, http.MethodGet, "/api/v1/config", hosttest.Auth, nil).Body)
}

func mustClient(t *testing.T, url string) *client.Client {
	t.Helper()
	cl, err := client.New(url, hosttest.Secret, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// oneLineWith fails unless stderr is one line holding each of want.
func oneLineWith(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "berthctl: ") {
		t.Errorf("%s: stderr is not one line: %q", what, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr %q does not hold %q", what, r.stderr, w)
		}
	}
}

func TestErrorsAreOneLineWithTheAPIsMessage(t *testing.T) {
	t.Parallel()
	c := setup(t, nil)
	apiError := func(method, path, auth string, body any) client.ErrorBody {
		t.Helper()
		var e client.ErrorBody
		c.h.Do(t, method, path, auth, body).JSON(t, &e)
		if e.Message == "" || e.Details == "" {
			t.Fatalf("%s %s: the API's error has no message or details: %+v", method, path, e)
		}
		return e
	}
	unknown := "0123456789abcdef01234567"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want client.ErrorBody
		also []string
	}{
		{"UnknownJob", []string{"get", unknown}, c.env,
			apiError(http.MethodGet, "/api/v1/jobs/"+unknown, hosttest.Auth, nil), []string{"404"}},
		{"MalformedID", []string{"log", "not-an-id"}, c.env,
			apiError(http.MethodGet, "/api/v1/jobs/not-an-id/log", hosttest.Auth, nil), []string{"400", "not-an-id"}},
		{"UnknownJobName", []string{"submit", "NOPE"}, c.env,
			apiError(http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("NOPE", nil, nil)), []string{"400", "NOPE"}},
		{"BadParameter", []string{"submit", "DEMO", "-p", "image=nodemo"}, c.env,
			apiError(http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("DEMO", map[string]any{"image": "nodemo"}, nil)), []string{"400", "image"}},
		{"BadSecret", []string{"get", unknown}, []string{"BERTH_URL=" + c.h.URL, "CORE_SECRET=wrong"},
			apiError(http.MethodGet, "/api/v1/jobs/"+unknown, "Harbor-Secret wrong", nil), []string{"401"}},
		{"NoSecret", []string{"list"}, []string{"BERTH_URL=" + c.h.URL},
			apiError(http.MethodGet, "/api/v1/jobs", "", nil), []string{"401", "no secret was sent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runEnv(t, tc.env, "", tc.args...)
			expect(t, r, 3, tc.name)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			oneLineWith(t, tc.name, r, append(tc.also, tc.want.Message, oneLine(tc.want.Details))...)
			if strings.Contains(r.stderr, "wrong") && tc.name == "BadSecret" {
				t.Errorf("the secret shows in %q", r.stderr)
			}
		})
	}

	// A secret from a file, with no CORE_SECRET.
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(hosttest.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runEnv(t, []string{"BERTH_URL=" + c.h.URL, "CORE_SECRET=wrong"}, "", "--secret-file", file, "list")
	expect(t, r, 0, "list with --secret-file")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestUnreachableAPIs(t *testing.T) {
	t.Parallel()
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	r := runEnv(t, []string{"CORE_SECRET=s"}, "", "--url", closed, "get", "0123456789abcdef01234567")
	expect(t, r, 5, "get from a closed port")
	oneLineWith(t, "a closed port", r, closed+"/api/v1/jobs/0123456789abcdef01234567", "refused")

	// A server that takes the connection and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	})
	defer conns.Wait()
	defer silent.Close()
	url := "http://" + silent.Addr().String()
	r = runEnv(t, []string{"BERTH_URL=" + url}, "", "--timeout", "300ms", "stats")
	expect(t, r, 5, "stats from a silent server")
	oneLineWith(t, "a silent server", r, url+"/api/v1/stats", "within 300ms")
}

func TestUsageAndHelp(t *testing.T) {
	t.Parallel()
	r := runEnv(t, nil, "", "--help")
	expect(t, r, 0, "--help")
	for _, want := range []string{"Exit codes:", "  1    the job ended Error", "  2    the job ended Stopped", "  4    usage", "  5    the API could not be reached",
		"BERTH_URL", "CORE_SECRET", "--secret-file", "submit", "watch", "executions"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help does not say %q:\n%s", want, r.stdout)
		}
	}
	r = runEnv(t, nil, "", "watch")
	expect(t, r, 4, "watch without an ID")
	oneLineWith(t, "watch without an ID", r, "missing ID", "berthctl watch --help")
	r = runEnv(t, nil, "", "__complete", "submit", "DEMO", "--kind", "")
	expect(t, r, 0, "completion of --kind")
	if !strings.Contains(r.stdout, "Periodic") {
		t.Errorf("completion of --kind: %s", r)
	}
}
