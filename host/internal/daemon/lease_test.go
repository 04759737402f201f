package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// relStopGrace is the stop grace of the hosts of the stop tests: long, so
// that a stop that waits for it cannot pass for one that did not.
const relStopGrace = 30 * time.Second

// relPostStop asks a host to stop a job, without a testing.T (it runs on
// the host's events bus), and returns the HTTP status or the error.
func relPostStop(h *hosttest.Host, id string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, h.URL+"/api/v1/jobs/"+id, bytes.NewReader([]byte(`{"action":"stop"}`)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", hosttest.Auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A stop that comes as the job becomes Running, before the plugin has the
// job, ends it at once: the host keeps the stop and the run, when it
// begins, hears it. Without that, a stop that finds nothing to end in the
// plugin yet takes effect only when the stop grace cancels the call (about
// one stop in a hundred sent at this instant, before the fix).
func TestStopAtTheInstantOfRunningEndsTheJobWithoutTheGrace(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	h := c.Start(t, func(cfg *config.Config) {
		cfg.Plugins.StopGrace = config.Duration(relStopGrace)
		cfg.WorkerPool.Workers = 16
	})

	// The stop is sent as the handler publishes Running: from its own
	// goroutine (before the runner has the attempt) for two jobs in three,
	// from another goroutine at once (landing while the plugin is being
	// called) for the third.
	const jobs = 300
	type result struct {
		status int
		err    error
	}
	var mu sync.Mutex
	results := map[string]result{}
	var wg sync.WaitGroup
	var n int
	remove := h.Events().Observe(func(ev job.Event) {
		if ev.To != job.Running || ev.Name != "CLOCK" {
			return
		}
		send := func() {
			status, err := relPostStop(h, ev.JobID)
			mu.Lock()
			results[ev.JobID] = result{status, err}
			mu.Unlock()
		}
		mu.Lock()
		n++
		inline := n%3 != 0
		mu.Unlock()
		if inline {
			send()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			send()
		}()
	})
	defer remove()
	defer wg.Wait()

	ids := make([]string, 0, jobs)
	for i := 0; i < jobs; i++ {
		ids = append(ids, h.Submit(t, "CLOCK", map[string]any{"hold_seconds": 120}, nil).ID)
	}
	// Well under the grace: a CLOCK job holds for two minutes unless
	// stopped, and a stop that waits for the grace takes 30 s.
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	for _, id := range ids {
		st := h.WaitStatus(t, id, job.Stopped, time.Until(deadline))
		mu.Lock()
		r, sent := results[id]
		mu.Unlock()
		if !sent || r.err != nil || r.status != http.StatusNoContent {
			t.Fatalf("job %s: the stop answered %d %v (sent %v)", id, r.status, r.err, sent)
		}
		if st.Revision == 0 {
			t.Fatalf("job %s: stats %+v", id, st)
		}
	}
	t.Logf("%d jobs stopped as they became Running; all Stopped %v after the last submission", jobs, time.Since(start).Round(time.Millisecond))
	if log := h.Log.String(); strings.Contains(log, "did not return within the stop grace") {
		t.Fatalf("a stopped job waited for the stop grace:\n%s", log)
	}
}

// relProcess is a host of a cluster in a berth process of its own, so
// that it can be frozen.
type relProcess struct{ *hosttest.Process }

// relStartBerth runs berth against the cluster with the given YAML added
// to its configuration, and waits until it serves.
func relStartBerth(t *testing.T, c *hosttest.Cluster, yml string) *relProcess {
	t.Helper()
	p := &relProcess{c.StartProcess(t, yml)}
	// Never leave its plugins frozen (hosttest continues berth itself).
	t.Cleanup(func() { p.signal(syscall.SIGCONT) })
	return p
}

// children are the process IDs of berth's children (its plugins), which
// any of its threads may have started.
func (p *relProcess) children() []int {
	dir := "/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	var out []int
	for _, task := range tasks {
		raw, _ := os.ReadFile(filepath.Join(dir, task.Name(), "children"))
		for _, f := range strings.Fields(string(raw)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// signal sends sig to berth and to the process group of each of its
// plugins (each plugin has a group of its own): the whole host, as a
// paused machine or container is.
func (p *relProcess) signal(sig syscall.Signal) []int {
	pids := append([]int{p.Cmd.Process.Pid}, p.children()...)
	for i, pid := range pids {
		if i == 0 {
			_ = syscall.Kill(pid, sig)
		} else {
			_ = syscall.Kill(-pid, sig)
		}
	}
	return pids
}

// do calls the process's API with the test secret.
func (p *relProcess) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", hosttest.Auth)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

func (p *relProcess) get(t *testing.T, id string) *job.Stats {
	t.Helper()
	status, raw := p.do(t, http.MethodGet, "/api/v1/jobs/"+id, nil)
	var env job.Envelope
	if err := json.Unmarshal(raw, &env); status != http.StatusOK || err != nil || env.Job == nil {
		t.Fatalf("get %s: %d %s", id, status, raw)
	}
	return env.Job
}

// relLeaseYAML gives the hosts of the lease tests a lease (dead_after) of
// 6 s, the least allowed, and a reaper that looks twice a second.
const relLeaseYAML = "reaper:\n  interval: 500ms\n  dead_after: 6s\n"

// A host frozen (SIGSTOP, plugins and all) for longer than its lease has
// its running job recovered and run by another host; when it resumes it
// finds it has lost the lease and gives its run up at once: its plugin's
// run ends (the plugin is told, and returns) rather than running on next
// to the new one, and the stale run's end is not recorded. The job then
// ends once, in the new run's revision.
func TestLeaseOfAFrozenHostIsLostAndItsRunEndsWhenItResumes(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := relStartBerth(t, c, relLeaseYAML)
	status, raw := a.do(t, http.MethodPost, "/api/v1/jobs", hosttest.Request("CLOCK", map[string]any{"hold_seconds": 30}, nil))
	var env job.Envelope
	if err := json.Unmarshal(raw, &env); status != http.StatusAccepted || err != nil || env.Job == nil {
		t.Fatalf("submit: %d %s", status, raw)
	}
	id := env.Job.ID
	deadline := time.Now().Add(wait)
	var first *job.Stats
	for {
		first = a.get(t, id)
		if first.Status == job.Running && strings.HasPrefix(first.CheckIn, "started_ms=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not start on the berth process: %+v", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// B starts once A runs the job, so that A is the one that has it.
	b := c.Start(t, func(cfg *config.Config) {
		cfg.Reaper.Interval = config.Duration(500 * time.Millisecond)
		cfg.Reaper.DeadAfter = config.Duration(6 * time.Second)
	})

	frozen := a.signal(syscall.SIGSTOP)
	frozeAt := time.Now()
	for _, pid := range frozen {
		for i := 0; !procs.Stopped(pid); i++ {
			if i > 500 {
				t.Fatalf("process %d did not stop", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(frozen) < 2 {
		t.Fatalf("froze %v: the berth process and no plugin", frozen)
	}
	second := b.Wait(t, id, 40*time.Second, "a run on the other host", func(s *job.Stats) bool {
		return s.Status == job.Running && s.Revision > first.Revision && strings.HasPrefix(s.CheckIn, "started_ms=")
	})
	if ms := startedMs(t, second); ms < frozeAt.UnixMilli() {
		t.Fatalf("the second run started at %d ms, before the first host froze (%d ms)", ms, frozeAt.UnixMilli())
	}
	t.Logf("frozen for %v before the job ran on the other host", time.Since(frozeAt).Round(time.Millisecond))

	a.signal(syscall.SIGCONT)
	resumedAt := time.Now()
	// The frozen host gives its run up at once: well within the 30 s the
	// CLOCK job would otherwise hold for (and within the stop grace).
	gaveUp := "the run was given up"
	deadline = resumedAt.Add(10 * time.Second)
	for !relHasLine(a.Out.String(), gaveUp, id) {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed host did not give its run of %s up within 10s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the resumed host gave its stale run up %v after it resumed", time.Since(resumedAt).Round(time.Millisecond))
	for _, l := range strings.Split(a.Out.String(), "\n") {
		if strings.Contains(l, id) {
			t.Log("resumed host: " + l)
		}
	}
	if relHasLine(a.Out.String(), "did not return within the stop grace", id) {
		t.Fatalf("the stale run's plugin did not end it; its call was cancelled after the grace")
	}
	if relHasLine(a.Out.String(), "the end of the attempt was not recorded", id) {
		t.Fatalf("the stale run ran to its end and tried to record it")
	}
	// The new run is the job's: it is not disturbed, and ends once.
	if st := b.Get(t, id); st.Status != job.Running || st.Revision != second.Revision {
		t.Fatalf("after the first host resumed: %+v, want the second run (revision %d) still Running", st, second.Revision)
	}
	if r := b.Action(t, id, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	if st := b.WaitStatus(t, id, job.Stopped, wait); st.Revision != second.Revision {
		t.Fatalf("the job ended in revision %d, want the second run's %d", st.Revision, second.Revision)
	}
}

// relHasLine tells whether a line of log holds both what and id.
func relHasLine(log, what, id string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, what) && strings.Contains(l, id) {
			return true
		}
	}
	return false
}
