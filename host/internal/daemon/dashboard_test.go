package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// dashWait bounds each step of the browser tests.
const dashWait = 10 * time.Second

// dashChromium finds a Chromium to drive, or skips the test.
func dashChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("dashboard browser tests skipped: no Chromium found on PATH; install Debian's chromium " +
		"(apt-get install -y chromium, part of make deps) to run them")
	return ""
}

// dashConsole collects what the page writes to its console.
type dashConsole struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	done chan struct{}
}

// problems are the messages that mean a bug of the page: uncaught
// exceptions, errors the page logs, and refusals by the CSP or Trusted
// Types. A refused HTTP call that the page handles (a 401, a 409) is a
// network entry, not a problem.
func (c *dashConsole) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		csp := strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Trusted Type")
		if m.IsException() || csp || (m.Type == chromedp.ConsoleError && m.Source != "network") {
			out = append(out, m.String())
		}
	}
	return out
}

// dashBrowser starts a headless Chromium, talking over a pipe, for the
// test; it stops with the test.
func dashBrowser(t *testing.T, path string) (context.Context, *dashConsole) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	console := &dashConsole{done: make(chan struct{})}
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
		<-console.done
	})
	// The first action starts the browser: no timeout on it (a timeout
	// would end the browser), but the allocator's own start timeout holds.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		close(console.done)
		t.Fatalf("start %s: %v", path, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(console.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			console.mu.Lock()
			console.msgs = append(console.msgs, m)
			console.mu.Unlock()
		}
	}()
	return ctx, console
}

// dashPage is a tab on a test host's dashboard.
type dashPage struct {
	t   *testing.T
	ctx context.Context
	dir string // where to save screenshots (BERTH_DASHBOARD_SCREENSHOTS), or ""
}

// do runs steps within dashWait; on failure it shows what the page says.
func (p *dashPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, dashWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("browser: %s: %v\n--- page text ---\n%s", what, err, p.text())
	}
}

// until waits, within dashWait, for a JavaScript condition to hold.
func (p *dashPage) until(what, expr string) {
	p.t.Helper()
	p.do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(dashWait)))
}

// eval evaluates a JavaScript expression into v.
func dashEval[T any](p *dashPage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, dashWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// text is the page's visible text, for failure messages.
func (p *dashPage) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

// shot saves a screenshot when BERTH_DASHBOARD_SCREENSHOTS names a folder.
func (p *dashPage) shot(name string) {
	p.t.Helper()
	if p.dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, dashWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(p.dir, name+".png"), png, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
	}
}

// dashJS quotes s as a JavaScript string.
func dashJS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// dashVisibleText is a JavaScript condition: the element sel is shown and
// its text holds want.
func dashVisibleText(sel, want string) string {
	return fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.offsetParent !== null && e.textContent.includes(%s); })()`,
		dashJS(sel), dashJS(want))
}

// TestDashboardInABrowser drives the dashboard of a real host in a real
// headless Chromium, as an operator would: a wrong secret, signing in,
// jobs appearing live, a running job's check-ins and log, stop, and a
// refused action. It is not parallel: it runs before the parallel tests
// of the package, so that the browser's waits do not race a busy machine.
func TestDashboardInABrowser(t *testing.T) {
	chromium := dashChromium(t)
	h := hosttest.NewCluster(t, "demo").Start(t, nil)
	ctx, console := dashBrowser(t, chromium)
	p := &dashPage{t: t, ctx: ctx, dir: os.Getenv("BERTH_DASHBOARD_SCREENSHOTS")}
	t.Cleanup(func() {
		if probs := console.problems(); len(probs) > 0 {
			t.Errorf("the page reported problems:\n%s", strings.Join(probs, "\n"))
		}
	})

	if !t.Run("WrongSecretIsRefusedClearly", func(t *testing.T) {
		p.t = t
		p.do("open the dashboard",
			chromedp.Navigate(h.URL+"/dashboard/"),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("secret"), "not-the-secret"),
			chromedp.Click(chromedp.ID("login-button")))
		p.until("the wrong secret's message", dashVisibleText("#login-error", "Wrong secret: the service refused it."))
		p.shot("wrong-secret")
		if got := dashEval[bool](p, `sessionStorage.getItem('berth.secret') === null && document.getElementById('overview').hidden`); !got {
			t.Fatal("a refused secret was kept, or the overview is shown")
		}
	}) {
		return
	}

	if !t.Run("SignInShowsThePoolLive", func(t *testing.T) {
		p.t = t
		p.do("sign in",
			chromedp.Clear(chromedp.ID("secret")),
			chromedp.SendKeys(chromedp.ID("secret"), hosttest.Secret),
			chromedp.Click(chromedp.ID("login-button")),
			chromedp.WaitVisible(chromedp.ID("overview")))
		p.until("the live stream", `document.getElementById('live').dataset.state === 'on'`)
		p.until("this host's pool with DEMO",
			`[...document.querySelectorAll('#pools .pool')].some(e => e.textContent.includes('Healthy') && [...e.querySelectorAll('.chip')].some(c => c.textContent === 'DEMO'))`)
		if got := dashEval[string](p, `JSON.stringify([location.href, document.cookie, sessionStorage.getItem('berth.secret')])`); got !=
			fmt.Sprintf(`[%s,"",%s]`, dashJS(h.URL+"/dashboard/"), dashJS(hosttest.Secret)) {
			t.Fatalf("URL, cookies and session storage = %s; want the secret in session storage only", got)
		}
	}) {
		return
	}

	var running string
	if !t.Run("JobsAppearLive", func(t *testing.T) {
		p.t = t
		before := dashEval[string](p, `document.getElementById('live').dataset.events || '0'`)
		quick := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0.2}), nil)
		// The row comes from the stream (data-source), not from polling.
		p.until("the submitted job's row", fmt.Sprintf(`(document.querySelector('#jobs-body tr[data-id=%s]') || {dataset: {}}).dataset.source === 'stream'`, dashJS(quick.ID)))
		p.until("its Success, live", fmt.Sprintf(`(document.querySelector('#jobs-body tr[data-id=%s]') || {dataset: {}}).dataset.status === 'Success'`, dashJS(quick.ID)))
		if after := dashEval[string](p, `document.getElementById('live').dataset.events || '0'`); after == before {
			t.Fatalf("the page got no job event from the stream (%s before, %s after)", before, after)
		}
		p.until("the counts from the stream", `(() => { const c = document.querySelector('#counts-body tr[data-name=DEMO] td[data-status=Success]'); return !!c && c.textContent === '1'; })()`)
		// A job that waits two seconds, so that its page is open before
		// it runs and its check-ins arrive on the page.
		st := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 30, "log_lines": 3}),
			map[string]any{"kind": "Scheduled", "schedule_delay": 2})
		running = st.ID
		p.until("the scheduled job's row", fmt.Sprintf(`(document.querySelector('#jobs-body tr[data-id=%s]') || {dataset: {}}).dataset.status === 'Scheduled'`, dashJS(running)))
		p.shot("overview")
	}) {
		return
	}

	if !t.Run("RunningJobShowsCheckInsAndLog", func(t *testing.T) {
		p.t = t
		p.do("open the job's page",
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`#jobs-body tr[data-id=%s] a`, dashJS(running)))),
			chromedp.WaitVisible(chromedp.ID("job")))
		p.until("the job's ID", dashVisibleText("#job-id", running))
		// The service keeps the latest check-in only: seeing the first
		// one means it came live.
		p.until("the first check-in", dashVisibleText("#checkins", "progress data: %30"))
		p.until("the second check-in", dashVisibleText("#checkins", "progress data: %60"))
		p.until("the progress bar", `(document.getElementById('progress-bar') || {}).value === 60`)
		p.until("the log lines", dashVisibleText("#log", "log line 3 of 3"))
		p.until("the Running status", `!!document.querySelector('#job-status [data-status=Running]')`)
		p.until("the stats with the parameters", dashVisibleText("#job-stats", `"image": "demo"`))
		p.shot("running-job")
	}) {
		return
	}

	if !t.Run("ReplicationProgressIsReadable", func(t *testing.T) {
		p.t = t
		// A check-in shaped like REPLICATION's per-blob one, handed to
		// the host's funnel as the store hands a real one.
		blob := `{"artifact":"library/nginx:1.27","blob":"sha256:5d41402abc4b2a76b9719d911017c592","index":2,"total":5,"bytes":1048576,"skipped":false}`
		h.Events().Publish(job.Event{JobID: running, Name: "DEMO", Kind: job.KindScheduled, From: job.Running, To: job.Running,
			Time: time.Now(), Reason: job.CheckedIn, CheckIn: blob})
		p.until("the blob in the check-ins", dashVisibleText("#checkins", blob))
		p.until("the blob's progress", dashVisibleText("#progress-label", "2 of 5"))
		p.until("the blob's size, readable", dashVisibleText(`#progress-fields dd[data-key=bytes]`, "1.0 MiB (1048576)"))
		p.until("the blob's artifact", dashVisibleText(`#progress-fields dd[data-key=artifact]`, "library/nginx:1.27"))
		p.shot("replication-progress")
	}) {
		return
	}

	if !t.Run("StopEndsItStopped", func(t *testing.T) {
		p.t = t
		p.do("press stop", chromedp.Click(chromedp.ID("action-stop")))
		p.until("the stop's confirmation", dashVisibleText("#action-result", "Stop requested"))
		p.until("the Stopped status", `!!document.querySelector('#job-status [data-status=Stopped]')`)
		p.until("the plugin's last log line", dashVisibleText("#log", "received op command: stop"))
		if st := h.Get(t, running); st.Status != job.Stopped {
			t.Fatalf("the API says %s; want Stopped", st.Status)
		}
	}) {
		return
	}

	if !t.Run("RefusedActionShowsTheAPIError", func(t *testing.T) {
		p.t = t
		p.do("press retry", chromedp.Click(chromedp.ID("action-retry")))
		p.until("the refusal", dashVisibleText("#action-error", "The service refused retry: HTTP 409 mismatch job status (code 10016)"))
		p.until("the refusal's reason", dashVisibleText("#action-error", "retry needs Error"))
		p.shot("refused-retry")
	}) {
		return
	}

	if !t.Run("FiltersGoThroughTheAPI", func(t *testing.T) {
		p.t = t
		set := func(id, value string) string {
			return fmt.Sprintf(`(() => { const s = document.getElementById(%s); s.value = %s; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`,
				dashJS(id), dashJS(value))
		}
		p.do("back to the overview", chromedp.Click(chromedp.CSS(`header nav a[href="#/"]`)), chromedp.WaitVisible(chromedp.ID("overview")))
		p.until("Stopped only", set("filter-status", "Stopped"))
		p.until("the stopped job, alone", fmt.Sprintf(`(() => { const rows = [...document.querySelectorAll('#jobs-body tr')];
			return rows.length === 1 && rows[0].dataset.id === %s && rows[0].dataset.status === 'Stopped'; })()`, dashJS(running)))
		// A combination the API refuses: its error is shown.
		p.until("Periodic with a status", set("filter-kind", "Periodic"))
		p.until("the API's refusal", dashVisibleText("#jobs-error", `query parameters "status" and "name" cannot go with kind=Periodic`))
		p.until("any status", set("filter-status", ""))
		p.until("any kind", set("filter-kind", ""))
		p.until("the list again", `document.getElementById('jobs-error').hidden && document.querySelectorAll('#jobs-body tr').length >= 2`)
	}) {
		return
	}

	t.Run("PeriodicPolicyAndItsExecutions", func(t *testing.T) {
		p.t = t
		// Once a day, two seconds from now: one execution, soon.
		fire := time.Now().UTC().Add(2 * time.Second)
		spec := fmt.Sprintf("%d %d %d * * *", fire.Second(), fire.Minute(), fire.Hour())
		policy := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), map[string]any{"kind": "Periodic", "cron_spec": spec})
		p.do("open the policies", chromedp.Click(chromedp.CSS(`header nav a[href="#/policies"]`)), chromedp.WaitVisible(chromedp.ID("policies")))
		p.until("the policy's row", fmt.Sprintf(`(() => { const r = document.querySelector('#policies-body tr[data-id=%s]'); return !!r && r.textContent.includes(%s); })()`, dashJS(policy.ID), dashJS(spec)))
		p.do("open the policy", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#policies-body tr[data-id=%s] a`, dashJS(policy.ID)))), chromedp.WaitVisible(chromedp.ID("executions-section")))
		pass, cancel := context.WithTimeout(context.Background(), dashWait)
		defer cancel()
		h.RunPeriodicPass(pass)
		p.until("an execution that succeeded", `[...document.querySelectorAll('#executions-body tr[data-id]')].some(r => r.dataset.status === 'Success' && r.dataset.id.includes('@'))`)
		p.shot("periodic-policy")
		p.do("stop the policy", chromedp.Click(chromedp.ID("action-stop")))
		p.until("the stopped policy", `!!document.querySelector('#job-status [data-status=Stopped]')`)
	})
}

// TestDashboardStreamFollowsARealHost reads GET /api/v1/events of a real
// host: a DEMO job's changes arrive in order, with the counts, and the
// stream ends, with an end event, as soon as the host stops.
func TestDashboardStreamFollowsARealHost(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t, "demo").Start(t, nil)
	req, err := http.NewRequest(http.MethodGet, h.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", hosttest.Auth)
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("GET /api/v1/events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type dashFrame struct{ event, data string }
	frames := make(chan dashFrame, 1024)
	go func() {
		defer close(frames)
		r := bufio.NewReader(resp.Body)
		var f dashFrame
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch line = strings.TrimSuffix(line, "\n"); {
			case line == "" && f.event != "":
				frames <- f
				f = dashFrame{}
			case strings.HasPrefix(line, "event: "):
				f.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				f.data = line[6:]
			}
		}
	}()
	next := func(what string, match func(dashFrame) bool) dashFrame {
		t.Helper()
		timer := time.NewTimer(dashWait)
		defer timer.Stop()
		for {
			select {
			case f, open := <-frames:
				if !open {
					t.Fatalf("the stream ended before %s", what)
				}
				if match(f) {
					return f
				}
			case <-timer.C:
				t.Fatalf("no %s on the stream within %s", what, dashWait)
			}
		}
	}
	next("ready", func(f dashFrame) bool { return f.event == "ready" })
	st := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0, "log_lines": 1}), nil)
	var reasons []string
	next("the job's success", func(f dashFrame) bool {
		var ev struct {
			JobID  string `json:"job_id"`
			Reason string `json:"reason"`
		}
		if f.event != "job" || json.Unmarshal([]byte(f.data), &ev) != nil || ev.JobID != st.ID {
			return false
		}
		reasons = append(reasons, ev.Reason)
		return ev.Reason == string(job.Succeeded)
	})
	if got := strings.Join(reasons, ","); got != "submitted,started,checked_in,checked_in,succeeded" {
		t.Errorf("the job's events = %s", got)
	}
	next("the counts with the success", func(f dashFrame) bool {
		return f.event == "counts" && strings.Contains(f.data, `"DEMO":{`) && strings.Contains(f.data, `"Success":1`)
	})
	start := time.Now()
	h.Stop()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the host took %s to stop with a stream open: the stream held it", d)
	}
	next("the end event", func(f dashFrame) bool { return f.event == "end" })
	for range frames { // the stream ends
	}
}
