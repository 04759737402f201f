package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/client"
	"github.com/berth-dev/berth/host/internal/config"
)

var t0 = time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestTallyCountsLostCompletedAndHooks(t *testing.T) {
	t.Parallel()
	b := newBook()
	b.accept("ok", demoJob, at(0))
	b.accept("lost", demoJob, at(0))
	b.accept("gone", probeJob, at(0))
	b.accept("nohook", demoJob, at(0))
	b.accept("wronghook", demoJob, at(0))
	b.refuse("A: HTTP 500 boom")
	b.refuse("B: timeout")

	b.status("ok", client.Running, at(100))
	b.status("ok", client.Success, at(900))
	b.hook("ok", client.Running, at(150))
	b.hook("ok", client.Success, at(1000))
	b.status("lost", client.Running, at(900))
	b.missing("gone")
	b.status("nohook", client.Success, at(800))
	b.hook("nohook", client.Running, at(200))
	// A failed run waiting for its retry shows Error; the job then
	// succeeds, and a late Error hook must not count as its last word.
	b.status("wronghook", client.Success, at(2000))
	b.hook("wronghook", client.Error, at(500))
	b.hook("wronghook", client.Success, at(2100))
	b.hook("wronghook", client.Error, at(2200))

	got := b.tally(at(500))
	want := tally{Submitted: 5, Refused: 2, Refusal: "A: HTTP 500 boom", Completed: 3, Succeeded: 3, Lost: 2, Gone: 1,
		Probed: 1, HooksMissing: 1, HooksWrong: 1}
	got.Slowest = ""
	if got != want {
		t.Fatalf("tally:\n got %+v\nwant %+v", got, want)
	}
}

func TestTallyRecoveryIsTheLastJobSettled(t *testing.T) {
	t.Parallel()
	b := newBook()
	for i, id := range []string{"a", "b", "c"} {
		b.accept(id, demoJob, at(0))
		b.status(id, client.Success, at(1000*(i+1)))
		b.hook(id, client.Success, at(1000*(i+1)+50)) // the hook settles it
	}
	got := b.tally(at(1500))
	if !got.Recovered || got.Recover != 1550*time.Millisecond {
		t.Fatalf("recovered %v in %s, want 1.55s", got.Recovered, got.Recover)
	}
	if !strings.Contains(got.Slowest, "c") {
		t.Fatalf("slowest %q, want job c", got.Slowest)
	}
	// Every job settled before the recovery: 0.
	if got := b.tally(at(9000)); !got.Recovered || got.Recover != 0 {
		t.Fatalf("recovered %v in %s, want 0", got.Recovered, got.Recover)
	}
	// A job without its final hook is not recovered.
	b.accept("d", demoJob, at(0))
	b.status("d", client.Stopped, at(100))
	if got := b.tally(at(0)); got.Recovered || got.HooksMissing != 1 || got.Lost != 0 {
		t.Fatalf("tally %+v, want not recovered, one hook missing, none lost", got)
	}
}

func TestHooksBeforeTheSubmissionAnswerCount(t *testing.T) {
	t.Parallel()
	b := newBook()
	b.hook("early", client.Pending, at(1))
	b.hook("early", client.Success, at(2))
	b.hook("stray", client.Success, at(2))
	b.accept("early", demoJob, at(3))
	b.status("early", client.Success, at(4))
	got := b.tally(at(0))
	if got.HooksMissing != 0 || got.Completed != 1 || got.Strays != 1 {
		t.Fatalf("tally %+v, want the early hooks applied and one stray", got)
	}
}

func TestAJobBackFromFinalIsNotFinal(t *testing.T) {
	t.Parallel()
	b := newBook()
	b.accept("j", probeJob, at(0))
	b.status("j", client.Error, at(100)) // a failed run waiting for its retry
	if len(b.unsettled(false, at(200))) != 1 {
		t.Fatal("a job in Error for 100ms is settled; want it read again until errorQuiet")
	}
	if len(b.unsettled(false, at(100).Add(errorQuiet))) != 0 {
		t.Fatal("a job in Error for errorQuiet is not settled")
	}
	b.status("j", client.Running, at(300)) // the retry
	if got := b.tally(at(0)); got.Lost != 1 {
		t.Fatalf("tally %+v, want the job lost while Running", got)
	}
	b.status("j", client.Success, at(400))
	b.hook("j", client.Success, at(450))
	if got := b.tally(at(0)); got.Lost != 0 || got.Completed != 1 || len(b.unsettled(true, at(500))) != 0 {
		t.Fatalf("tally %+v, want it completed", got)
	}
}

func TestOverlapOfRuns(t *testing.T) {
	t.Parallel()
	run := func(start, last int) *runSeen { return &runSeen{start: at(start), last: at(last)} }
	for _, tc := range []struct {
		name string
		runs []*runSeen
		want time.Duration
	}{
		{"One", []*runSeen{run(0, 1000)}, 0},
		{"OneAfterTheOther", []*runSeen{run(0, 1000), run(1000, 2000), run(2500, 3000)}, 0},
		{"Overlapping", []*runSeen{run(2000, 9000), run(0, 3000)}, time.Second},
		{"Nested", []*runSeen{run(0, 10000), run(2000, 3000), run(5000, 9500)}, 4500 * time.Millisecond},
		{"FarApartThenOverlap", []*runSeen{run(0, 100), run(5000, 6000), run(5900, 7000)}, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := maxOverlap(tc.runs); got != tc.want {
				t.Fatalf("maxOverlap = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestProbeReportsMakeRuns(t *testing.T) {
	t.Parallel()
	b := newBook()
	b.probe("start", "j", "r1", 10, at(0)) // before the submission's answer
	b.accept("j", probeJob, at(5))
	b.probe("beat", "j", "r1", 10, at(100))
	b.probe("beat", "j", "r1", 10, at(200))
	// A second run, on another host, starts before the first ends.
	b.probe("start", "j", "r2", 20, at(150))
	b.probe("end", "j", "r2", 20, at(400))
	b.probe("end", "j", "r1", 10, at(300))
	b.probe("beat", "nobody", "r9", 10, at(300))
	b.status("j", client.Success, at(500))
	b.hook("j", client.Success, at(500))
	got := b.tally(at(0))
	if got.Twice != 1 || got.OverlapMax != 150*time.Millisecond || got.Strays != 1 {
		t.Fatalf("tally %+v, want one job run twice at once for 150ms and one stray report", got)
	}
	if live := b.liveJobs([]int{10, 20}, at(0), at(1000)); len(live) != 0 {
		t.Fatalf("live jobs %v after both ended", live)
	}
	if n := b.endedSince(at(250)); n != 2 {
		t.Fatalf("endedSince = %d, want 2", n)
	}
	if !b.rerun(map[string]bool{"j": true}, []int{10}, at(100)) || b.rerun(map[string]bool{"j": true}, []int{10, 20}, at(100)) {
		t.Fatal("rerun: want r2 (pid 20) seen as a run elsewhere, and none once pid 20 is the host's")
	}
	if s := b.runsAround(map[string]bool{"j": true}, []int{10}, at(100)); !strings.Contains(s, "+200ms") || !strings.Contains(s, "+50ms") {
		t.Fatalf("runsAround = %q", s)
	}
}

func TestParseReport(t *testing.T) {
	t.Parallel()
	r, ok := parseReport("beat 0123abcd 9f9f 42 1796183984000000000")
	if !ok || r.kind != "beat" || r.job != "0123abcd" || r.run != "9f9f" || r.pid != 42 || r.at.UnixNano() != 1796183984000000000 {
		t.Fatalf("parseReport = %+v, %v", r, ok)
	}
	for _, bad := range []string{"", "beat a b 1", "jump a b 1 2", "beat a b x 2", "beat a b 1 -2", "beat a b 0 2"} {
		if _, ok := parseReport(bad); ok {
			t.Errorf("parseReport(%q) is ok", bad)
		}
	}
}

func TestParentOf(t *testing.T) {
	t.Parallel()
	if p, ok := parentOf("123 (a (weird) name) S 77 123 123 0"); !ok || p != 77 {
		t.Fatalf("parentOf = %d, %v; want 77", p, ok)
	}
	if _, ok := parentOf("garbage"); ok {
		t.Fatal("parentOf(garbage) is ok")
	}
	// This test's own process is a child of its parent.
	if kids := children(os.Getppid()); len(kids) == 0 {
		t.Fatal("children of the parent process: none")
	}
}

func TestParseOpened(t *testing.T) {
	t.Parallel()
	o, f, e, ok := parseOpened("noise\nopened 4096 failed 904 dial tcp: i/o timeout\n")
	if !ok || o != 4096 || f != 904 || e != "dial tcp: i/o timeout" {
		t.Fatalf("parseOpened = %d %d %q %v", o, f, e, ok)
	}
	if _, _, _, ok := parseOpened("opened x failed 1"); ok {
		t.Fatal("a bad line is ok")
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		t       tally
		allowed bool
		defects []string
		skipped bool
		err     string
		want    string
	}{
		{"Clean", tally{Submitted: 3, Completed: 3}, false, nil, false, "", verdictOK},
		{"Lost", tally{Lost: 1}, false, nil, false, "", verdictFail},
		{"Twice", tally{Twice: 1}, true, nil, false, "", verdictFail},
		{"LossAllowed", tally{Lost: 4}, true, nil, false, "", verdictExpected},
		{"HooksMissing", tally{HooksMissing: 1}, false, nil, false, "", verdictDefect},
		{"Defect", tally{}, false, []string{"exits"}, false, "", verdictDefect},
		{"Error", tally{}, false, nil, false, "setup: no redis", verdictError},
		{"Skipped", tally{}, false, nil, true, "", verdictSkip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := judge(tc.t, tc.allowed, tc.defects, tc.skipped, tc.err); got != tc.want {
				t.Fatalf("judge = %s, want %s", got, tc.want)
			}
		})
	}
	if !failed(verdictFail) || !failed(verdictError) || failed(verdictDefect) || failed(verdictExpected) || failed(verdictSkip) {
		t.Fatal("failed: only FAIL and ERROR fail the suite")
	}
}

func TestTableAndSummary(t *testing.T) {
	t.Parallel()
	rows := []row{
		{fault: "host-kill", what: "kill -9", t: tally{Submitted: 10, Completed: 10, Recovered: true, Recover: 6500 * time.Millisecond},
			verdict: verdictOK, took: 8 * time.Second, notes: []string{"host A killed"}},
		{fault: "log-disk-full", what: "full", verdict: verdictSkip, notes: []string{"skipped: mount"}},
		{fault: "redis-late", t: tally{Submitted: 2, Lost: 1}, verdict: verdictFail, defects: []string{"exits"}},
	}
	var buf bytes.Buffer
	printTable(&buf, rows, 30*time.Second)
	out := buf.String()
	for _, want := range []string{"twice at once", "6.5s", "never", "SKIP", "defect: exits", "skipped: mount"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var hostKill []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "host-kill" {
			hostKill = f
			break
		}
	}
	if want := "host-kill 10 0 10 0 0 0 6.5s 8.0s ok"; strings.Join(hostKill, " ") != want {
		t.Errorf("row %q, want %q", strings.Join(hostKill, " "), want)
	}
	if line, ok := summary(rows); ok || !strings.Contains(line, "redis-late") {
		t.Fatalf("summary = %q, %v; want a FAIL naming redis-late", line, ok)
	}
	if _, ok := summary(rows[:2]); !ok {
		t.Fatal("summary of ok and SKIP rows fails")
	}
}

func TestSelectFaults(t *testing.T) {
	t.Parallel()
	all := faults(options{idleConns: 20000})
	short, err := selectFaults(all, nil, true)
	if err != nil || len(short) == 0 || len(short) >= len(all) {
		t.Fatalf("short: %d of %d faults, %v", len(short), len(all), err)
	}
	one, err := selectFaults(all, []string{"redis-late", " host-kill"}, true)
	if err != nil || len(one) != 2 || one[0].name != "redis-late" || one[1].name != "host-kill" {
		t.Fatalf("-only: %v, %v", one, err)
	}
	if _, err := selectFaults(all, []string{"nope"}, false); err == nil {
		t.Fatal("-only nope: no error")
	}
	seen := map[string]bool{}
	for _, f := range all {
		if seen[f.name] || f.setup == nil || f.inject == nil {
			t.Errorf("fault %q: duplicate or incomplete", f.name)
		}
		seen[f.name] = true
	}
}

// The hosts' YAML is a valid Berth configuration, with the values the
// suite's definitions rest on.
func TestHostConfigLoads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, o := range []hostOpts{
		{redisURL: "redis://127.0.0.1:6390", namespace: "chaos_x"},
		{redisURL: "redis+sentinel://:pw@127.0.0.1:26390/chaos", namespace: "chaos_y", fileLogs: filepath.Join(dir, "logs")},
	} {
		path := filepath.Join(dir, o.namespace+".yml")
		if err := os.WriteFile(path, []byte(hostConfig(9999, dir, o)), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path, nil)
		if err != nil {
			t.Fatalf("config.Load: %v\n%s", err, hostConfig(9999, dir, o))
		}
		if c.Reaper.DeadAfter.Std() != deadAfter || c.Reaper.Interval.Std() != reaperInterval ||
			c.WorkerPool.RedisPool.RedisURL != o.redisURL || c.WorkerPool.RedisPool.Namespace != o.namespace ||
			c.Port != 9999 || c.BindAddress != "127.0.0.1" || len(c.JobLoggers) != 1 {
			t.Fatalf("config: %+v", c)
		}
		if c.Reaper.MaxJobDuration.Std() != config.Default().Reaper.MaxJobDuration.Std() {
			t.Fatal("max_job_duration is not the default: it would hide jobs left Running")
		}
	}
}
