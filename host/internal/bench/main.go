package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// options are the command line.
type options struct {
	out            string
	quick          bool
	parts          []int
	jobs           int
	runs           int
	workers        int
	timeout        time.Duration
	budget         time.Duration
	cpuprofile     string
	trace          string
	profileParts   []int
	pluginProfile  string
	verbose        bool
	steadyFor      time.Duration
	sparseFor      time.Duration
	scheduledFor   time.Duration
	stopSamples    int
	commandJobs    int
	burstJobs      int
	idleFor        time.Duration
	steadyRate     float64
	sparseRate     float64
	scheduledRate  float64
	scheduledDelay uint64
}

func main() {
	if runSubmitter() {
		return
	}
	var o options
	partsFlag := flag.String("parts", "1,2,3,4,5,6,7,8,9,10", "parts to run: numbers or names (raw, process, submit, pickup, scheduled, stop, commands, talk, profile, transport)")
	flag.StringVar(&o.out, "out", "", "write the results as JSON to this file")
	flag.BoolVar(&o.quick, "quick", false, "short run: fewer jobs, runs and samples (about 45 s)")
	flag.IntVar(&o.jobs, "n", 0, "jobs per throughput run (default 5000, quick 1000)")
	flag.IntVar(&o.runs, "runs", 0, "runs per throughput figure (default 3, quick 1)")
	flag.IntVar(&o.workers, "workers", 10, "worker pool concurrency, raw and Berth alike")
	flag.IntVar(&o.burstJobs, "burst", 0, "jobs of the burst part 4's second host runs before its pickup measurements (default 5000, quick 2000)")
	flag.DurationVar(&o.timeout, "timeout", 0, "bound of every part (default: each part's own bound)")
	flag.DurationVar(&o.budget, "budget", 6*time.Minute, "bound of the whole run; parts that would start later are skipped")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the bench process (raw pools, Berth hosts, clients) to this file")
	flag.StringVar(&o.trace, "trace", "", "write a Go execution trace of the bench process, over the parts of -profile-parts, to this file")
	profileParts := flag.String("profile-parts", "", "parts the -cpuprofile covers, one contiguous range such as 2 or 4,5 (default: every part run)")
	flag.StringVar(&o.pluginProfile, "plugin-cpuprofile", "", "write a CPU profile of the plugin process of part 2 to <this path>.<pid>")
	flag.BoolVar(&o.verbose, "v", false, "log the hosts' INFO lines")
	flag.Parse()
	parts, err := parseParts(*partsFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	o.parts = parts
	if *profileParts != "" {
		if o.profileParts, err = parsePartList(*profileParts, false); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
	}
	o.applyDefaults()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o *options) applyDefaults() {
	def := func(v *int, normal, quick int) {
		if *v <= 0 {
			*v = normal
			if o.quick {
				*v = quick
			}
		}
	}
	def(&o.jobs, 5000, 1000)
	def(&o.runs, 3, 1)
	def(&o.stopSamples, 50, 15)
	def(&o.commandJobs, 2000, 500)
	def(&o.burstJobs, 5000, 2000)
	pick := func(normal, quick time.Duration) time.Duration {
		if o.quick {
			return quick
		}
		return normal
	}
	o.steadyFor = pick(3*time.Second, time.Second)
	o.sparseFor = pick(20*time.Second, 6*time.Second)
	o.scheduledFor = pick(10*time.Second, 4*time.Second)
	// gocraft/work's idle workers poll every 5 s and its heartbeat beats
	// every 5 s: a window of a multiple of 5 s sees whole rounds.
	o.idleFor = pick(10*time.Second, 5*time.Second)
	o.steadyRate, o.sparseRate, o.scheduledRate = 1000, 5, 4
	o.scheduledDelay = 2
}

// part is one measurement of the list.
type part struct {
	n       int
	name    string
	timeout time.Duration // normal run; quick runs get half
	run     func(ctx context.Context, b *bench) error
}

var allParts = []part{
	{1, "raw", 40 * time.Second, partRaw},
	{2, "process", 60 * time.Second, partProcess},
	{3, "submit", 45 * time.Second, partSubmit},
	{4, "pickup", 120 * time.Second, partPickup},
	{5, "scheduled", 45 * time.Second, partScheduled},
	{6, "stop", 60 * time.Second, partStop},
	{7, "commands", 100 * time.Second, partCommands},
	{8, "talk", 60 * time.Second, partTalk},
	{9, "profile", 45 * time.Second, partProfile},
	{10, "transport", 45 * time.Second, partTransport},
}

func parseParts(s string) ([]int, error) { return parsePartList(s, true) }

// parsePartList parses a list of parts; with deps, part 2 brings part 1.
func parsePartList(s string, deps bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		found := false
		for _, p := range allParts {
			if f == strconv.Itoa(p.n) || f == p.name {
				out, found = append(out, p.n), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown part %q: use 1-10 or raw, process, submit, pickup, scheduled, stop, commands, talk, profile, transport", f)
		}
	}
	// Part 2's ratio needs part 1's baseline.
	if deps && slices.Contains(out, 2) && !slices.Contains(out, 1) {
		out = append(out, 1)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// bench is the state shared by the parts.
type bench struct {
	opts       options
	tmp        string
	addr       string
	redisPID   int
	pool       *redis.Pool // the bench's own commands (counted)
	counter    *cmdCounter
	subject    *redis.Pool // raw gocraft/work and job seeding (not counted)
	pluginsDir string
	stamps     *stampBook
	api        *apiClient
	rep        *report
	hostLog    *hostLog
	// rawCPU is part 1's CPU per no-op job, every process (0 before).
	rawCPU time.Duration

	mu    sync.Mutex // an abandoned part may still add
	notes []string   // of the running part
}

func (b *bench) add(m *metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rep.Metrics = append(b.rep.Metrics, m)
}

func (b *bench) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func run(o options) error {
	began := time.Now()
	tmp, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{opts: o, tmp: tmp, counter: &cmdCounter{}, api: newAPIClient(), hostLog: &hostLog{}}

	fmt.Println("berth bench: building the bench plugin and starting redis-server...")
	b.pluginsDir = filepath.Join(tmp, "plugins")
	if err := buildPlugin(b.pluginsDir); err != nil {
		return err
	}
	addr, redisPID, stopRedis, err := startRedis(tmp)
	if err != nil {
		return err
	}
	defer stopRedis()
	b.addr, b.redisPID = addr, redisPID
	b.pool = newPool(addr, b.counter)
	defer b.pool.Close()
	b.subject = newPool(addr, nil)
	defer b.subject.Close()
	if b.stamps, err = newStampBook(); err != nil {
		return err
	}
	defer b.stamps.close()
	// The plugin processes inherit this (go-plugin passes the host's
	// environment; the host keeps BERTH_PLUGIN_* variables).
	os.Setenv("BERTH_PLUGIN_BENCH_STAMPS", b.stamps.addr())

	b.rep = &report{
		Time: time.Now().UTC(), GoVersion: runtime.Version(), Commit: commit(),
		Machine: machineInfo(b.pool),
		Settings: map[string]any{
			"quick": o.quick, "parts": o.parts, "jobs_per_run": o.jobs, "runs": o.runs, "workers": o.workers,
			"steady_rate_per_s": o.steadyRate, "steady_seconds": o.steadyFor.Seconds(),
			"sparse_rate_per_s": o.sparseRate, "sparse_seconds": o.sparseFor.Seconds(),
			"scheduled_rate_per_s": o.scheduledRate, "scheduled_seconds": o.scheduledFor.Seconds(), "schedule_delay_s": o.scheduledDelay,
			"stop_samples": o.stopSamples, "command_jobs": o.commandJobs, "burst_jobs": o.burstJobs, "idle_seconds": o.idleFor.Seconds(),
		},
	}
	m := b.rep.Machine
	fmt.Printf("berth bench: %d CPUs (%s), %s, redis %s on %s, commit %s, %d workers\n",
		m.CPUs, m.CPUModel, b.rep.GoVersion, m.RedisVersion, addr, orNone(b.rep.Commit), o.workers)
	fmt.Printf("load average before: %s. The bench client, the raw pools, the Berth hosts (in this process), their plugin processes and Redis share the machine.\n", orNone(m.LoadAvgStart))
	fmt.Println()

	var profile, traceOut *os.File
	if o.cpuprofile != "" {
		if profile, err = os.Create(o.cpuprofile); err != nil {
			return err
		}
		defer profile.Close()
	}
	if o.trace != "" {
		if traceOut, err = os.Create(o.trace); err != nil {
			return err
		}
		defer traceOut.Close()
	}
	profiling := false
	for _, p := range allParts {
		if !slices.Contains(o.parts, p.n) {
			continue
		}
		want := (profile != nil || traceOut != nil) && (o.profileParts == nil || slices.Contains(o.profileParts, p.n))
		if want && !profiling {
			if profile != nil {
				if err := pprof.StartCPUProfile(profile); err != nil {
					return err
				}
			}
			if traceOut != nil {
				if err := trace.Start(traceOut); err != nil {
					return err
				}
			}
			profiling = true
		}
		b.rep.Parts = append(b.rep.Parts, b.runPart(p, began))
		if profiling && (o.profileParts != nil && !slices.Contains(o.profileParts, p.n+1)) {
			stopProfiles(profile, traceOut)
			profiling, profile, traceOut = false, nil, nil
		}
	}
	if profiling {
		stopProfiles(profile, traceOut)
	}
	b.rep.Seconds = time.Since(began).Seconds()
	b.rep.Machine.LoadAvgEnd = loadAvg()

	fmt.Println()
	b.rep.print(os.Stdout)
	fmt.Printf("\ntotal %.1fs; load average before %s, after %s (other work on the machine skews the figures)\n", b.rep.Seconds, orNone(b.rep.Machine.LoadAvgStart), orNone(b.rep.Machine.LoadAvgEnd))
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := b.rep.write(o.out); err != nil {
			return err
		}
		fmt.Printf("results written to %s\n", o.out)
	}
	return nil
}

// runPart runs one part within its bound. A part that fails or runs out
// of time is reported and the run goes on; one that does not return even
// after its context ended is abandoned (its goroutines may still run).
func (b *bench) runPart(p part, began time.Time) partResult {
	res := partResult{Part: p.n, Name: p.name}
	bound := p.timeout
	if b.opts.quick {
		bound /= 2
	}
	if b.opts.timeout > 0 {
		bound = b.opts.timeout
	}
	left := b.opts.budget - time.Since(began)
	if left < 5*time.Second {
		res.Status, res.Error = "skipped", fmt.Sprintf("the run's budget (-budget %s) is spent", b.opts.budget)
		fmt.Printf("part %d %s: %s\n", p.n, p.name, res.Error)
		return res
	}
	bound = min(bound, left)
	fmt.Printf("part %d %s (bound %s)...\n", p.n, p.name, bound)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	b.mu.Lock()
	b.notes = nil
	b.mu.Unlock()
	b.stamps.reset()
	b.hostLog.take()
	_, _, _ = slowCommands(b.pool) // from here on, this part's
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- p.run(ctx, b)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Give the part a moment to notice and clean up.
		select {
		case err = <-done:
		case <-time.After(15 * time.Second):
			err = errors.New("did not return after its bound; abandoned")
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if warns, errs, hidden, first := b.hostLog.take(); warns+errs > 0 {
		msg := fmt.Sprintf("the hosts logged %d errors and %d warnings (%d lines not shown on stderr)", errs, warns, hidden)
		if first != "" {
			msg += "; first: " + first
		}
		b.note("%s", msg)
	}
	if n, worst, err := slowCommands(b.pool); err == nil && n > 0 {
		b.note("Redis ran %d commands of %d ms or more (the slowest: %s), holding every client back meanwhile", n, slowCommand/1000, worst)
	}
	b.mu.Lock()
	res.Notes = b.notes
	b.mu.Unlock()
	switch {
	case err == nil && ctx.Err() == nil:
		res.Status = "ok"
	case ctx.Err() != nil:
		res.Status = "timeout"
		if err != nil {
			res.Error = err.Error()
		}
	default:
		res.Status, res.Error = "failed", err.Error()
	}
	fmt.Printf("part %d %s: %s in %.1fs", p.n, p.name, res.Status, res.Seconds)
	if res.Error != "" {
		fmt.Printf(": %s", res.Error)
	}
	fmt.Println()
	return res
}

func stopProfiles(profile, traceOut *os.File) {
	if profile != nil {
		pprof.StopCPUProfile()
	}
	if traceOut != nil {
		trace.Stop()
	}
}

func buildPlugin(dir string) error {
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "benchplugin"), "./host/internal/bench/plugin").CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the bench plugin (run from the module root): %v\n%s", err, out)
	}
	return nil
}

// commit is `git rev-parse HEAD`, or the VCS revision stamped in the
// binary, or "".
func commit() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

func machineInfo(pool *redis.Pool) machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, RedisVersion: redisVersion(pool), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute averages: other work on
// the machine skews every figure, and this shows whether there was some.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
