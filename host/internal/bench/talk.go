package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/berth-dev/berth/host/internal/bench/transport"
	"github.com/berth-dev/berth/host/internal/job"
)

// chattyCase is one shape of the CHATTY job of part 8.
type chattyCase struct {
	name            string
	lines, checkins int
	gapMS           int // between check-ins
}

var chattyCases = []chattyCase{
	{"silent", 0, 0, 0},
	{"100 lines", 100, 0, 0},
	{"10 check-ins", 0, 10, 0},
	{"10 check-ins 2 ms apart", 0, 10, 2},
	{"100 lines + 10 check-ins", 100, 10, 0},
}

// Part 8: talk. One host runs CHATTY jobs that log and check in, each
// case a batch as part 2 runs NOOP. The host's CPU per log line and per
// check-in is the case's bench-process CPU per job less the silent case's,
// divided by the lines or check-ins of a job. Back-to-back check-ins reach
// the host together and are recorded in one step; check-ins 2 ms apart
// arrive one at a time (their idle waits cost no CPU).
func partTalk(ctx context.Context, b *bench) error {
	h, err := b.startHost(ctx, "bench-talk", "CHATTY")
	if err != nil {
		return err
	}
	defer h.stop()
	n := max(b.opts.jobs/5, 200)
	use := map[string]cpuUse{}
	for _, c := range chattyCases {
		var total cpuUse
		for r := range b.opts.runs {
			_, u, bad, err := b.batchPolled(ctx, h, "CHATTY", n, func(int) job.Parameters {
				return job.Parameters{"lines": c.lines, "checkins": c.checkins, "gap_ms": c.gapMS}
			}, 50*time.Millisecond)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", c.name, r+1, err)
			}
			if bad > 0 {
				b.note("%s: %d jobs did not end Success", c.name, bad)
			}
			total.add(u)
		}
		use[c.name] = total
		b.note("%s: %s", c.name, total.text(n*b.opts.runs, true))
	}
	jobs := float64(n * b.opts.runs)
	perJob := func(name string) float64 { return float64(use[name].Bench.Microseconds()) / jobs }
	silent := perJob("silent")
	line := (perJob("100 lines") - silent) / 100
	checkin := (perJob("10 check-ins") - silent) / 10
	spaced := (perJob("10 check-ins 2 ms apart") - silent) / 10
	b.add(cpuMetric(8, "berth.cpu_per_log_line", "host CPU per log line", line, b.opts.runs, n, 30))
	b.add(cpuMetric(8, "berth.cpu_per_checkin", "host CPU per check-in, back to back", checkin, b.opts.runs, n, 30))
	b.add(cpuMetric(8, "berth.cpu_per_lone_checkin", "host CPU per check-in, one at a time", spaced, b.opts.runs, n, 30))
	both := use["100 lines + 10 check-ins"]
	all := float64((both.Bench + both.Plugins + both.Redis).Microseconds()) / jobs
	quiet := use["silent"]
	m := &metric{Part: 8, Key: "berth.cpu_chatty_job", Label: "CPU of a job with 100 lines + 10 check-ins over a silent one, all processes", Unit: "x",
		Berth: &figure{Value: all / (float64((quiet.Bench + quiet.Plugins + quiet.Redis).Microseconds()) / jobs), Runs: b.opts.runs, PerRunCount: n}}
	b.add(m)
	b.note("host CPU is the bench process's (the host runs in it); per line and per check-in: (case - silent) / count")
	return nil
}

// cpuMetric is a CPU cost in microseconds with an upper target.
func cpuMetric(part int, key, label string, us float64, runs, n int, most float64) *metric {
	m := &metric{Part: part, Key: key, Label: label, Unit: "us", Berth: &figure{Value: us, Runs: runs, PerRunCount: n}}
	m.judge(fmt.Sprintf("<= %.0f us", most), us <= most)
	return m
}

// Part 9: profile. CPU profiles of the host (the bench process) and of
// the plugin process while a host runs NOOP jobs and then CHATTY jobs of
// 100 lines and 10 check-ins; the top functions of each are printed, so
// that every remaining cost has a name.
func partProfile(ctx context.Context, b *bench) error {
	if b.opts.cpuprofile != "" {
		return fmt.Errorf("skipped: -cpuprofile is profiling the bench process already")
	}
	dir := filepath.Join(b.tmp, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pluginProf := filepath.Join(dir, "plugin.pprof")
	os.Setenv("BERTH_PLUGIN_BENCH_CPUPROFILE", pluginProf)
	h, err := b.startHost(ctx, "bench-profile", "NOOP", "CHATTY", "PROFILE_STOP")
	os.Unsetenv("BERTH_PLUGIN_BENCH_CPUPROFILE")
	if err != nil {
		return err
	}
	defer h.stop()
	hostProf := filepath.Join(dir, "host.pprof")
	f, err := os.Create(hostProf)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("host profile: %w", err)
	}
	n := b.opts.jobs
	_, _, _, errNoop := b.batch(ctx, h, "NOOP", n, func(i int) job.Parameters { return job.Parameters{"i": i} })
	_, _, _, errChatty := b.batch(ctx, h, "CHATTY", max(n/5, 200), func(int) job.Parameters {
		return job.Parameters{"lines": 100, "checkins": 10}
	})
	pprof.StopCPUProfile()
	if errNoop != nil || errChatty != nil {
		return fmt.Errorf("profiled runs: %v %v", errNoop, errChatty)
	}
	b.stopPluginProfile(ctx, h, pluginProf)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b.noteTop("host (the bench process)", self, hostProf)
	pids := h.d.PluginPIDs()
	if len(pids) > 0 {
		b.noteTop("plugin", filepath.Join(b.pluginsDir, "benchplugin"), fmt.Sprintf("%s.%d", pluginProf, pids[0]))
	}
	b.note("profiles: %s (go tool pprof <binary> <profile>); they are removed with the bench's temporary directory", dir)
	return nil
}

// noteTop adds the functions with the most CPU of a profile: all of them
// by their own (flat) time, and Berth's by the time spent in them and what
// they call (cum), which names the cost of each step.
func (b *bench) noteTop(what, binary, profile string) {
	if _, err := os.Stat(profile); err != nil {
		b.note("%s profile: %v", what, err)
		return
	}
	for _, view := range []struct {
		title string
		args  []string
	}{
		{"by own time", []string{"-top", "-nodecount=10"}},
		{"Berth's functions by time with callees", []string{"-top", "-cum", "-nodecount=14", "-show=berth-dev/berth/"}},
	} {
		args := append([]string{"tool", "pprof"}, view.args...)
		out, err := exec.Command("go", append(args, binary, profile)...).Output()
		if err != nil {
			b.note("%s profile: go tool pprof: %v", what, err)
			return
		}
		b.note("%s CPU profile, top functions %s (flat, flat%%, sum%%, cum, cum%%):", what, view.title)
		sc := bufio.NewScanner(bytes.NewReader(out))
		table := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "flat"):
				table = true
			case table && line != "":
				b.note("  %s", shorten(line))
			case strings.HasPrefix(line, "Duration"):
				b.note("  %s", line)
			}
		}
	}
}

// shorten drops the module path from a profile line's function.
func shorten(line string) string {
	return strings.ReplaceAll(line, "github.com/berth-dev/berth/", "")
}

// Part 10: transport. The plugin protocol's run carried three ways over
// the same mutual-TLS gRPC connection go-plugin makes (a unary call per
// job, a stream per job, one stream for every job of a process), with no
// callbacks and with 10, measuring both ends (in this process). Protocol
// v2 carries runs on the shared stream; this part is the evidence.
func partTransport(ctx context.Context, b *bench) error {
	n := b.opts.jobs * 2
	self := os.Getpid()
	cpu := func() time.Duration { return procCPU(self) }
	per := map[string]float64{}
	for _, cb := range []int{0, 10} {
		for _, mode := range []string{transport.ModeUnary, transport.ModePerJob, transport.ModeShared} {
			var cpus, rates []float64
			for range b.opts.runs {
				r, err := transport.Measure(ctx, mode, n, b.opts.workers, cb, cpu)
				if err != nil {
					return fmt.Errorf("%s, %d callbacks: %w", mode, cb, err)
				}
				cpus = append(cpus, float64(r.CPU.Nanoseconds())/1000)
				rates = append(rates, r.PerSecond)
			}
			key := fmt.Sprintf("%s/%d", mode, cb)
			per[key] = median(cpus)
			b.note("%s stream, %d callbacks: %.1f us CPU/job (both ends), %s runs/s", mode, cb, median(cpus), num(median(rates)))
		}
		m := &metric{Part: 10, Key: fmt.Sprintf("transport.shared_vs_per_job_%d", cb),
			Label: fmt.Sprintf("CPU/run, one shared stream over a stream per run, %d callbacks", cb), Unit: "x",
			Berth: &figure{Value: per[fmt.Sprintf("%s/%d", transport.ModeShared, cb)] / per[fmt.Sprintf("%s/%d", transport.ModePerJob, cb)], Runs: b.opts.runs, PerRunCount: n}}
		m.judge("< 1 (keep the shared stream)", m.Berth.Value < 1)
		b.add(m)
	}
	return nil
}
