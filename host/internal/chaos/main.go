package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	short     bool
	only      []string
	bin       string // directory with berth and plugins/demo, or "" to build
	keep      bool
	idleConns int
	bound     time.Duration
}

// suite is what the faults share: the binaries and the processes.
type suite struct {
	opts       options
	tmp        string
	berthBin   string
	pluginsDir string
	procs      *procSet
	transport  *http.Transport
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == idleHelperArg {
		n, err := strconv.Atoi(os.Args[3])
		if err != nil {
			os.Exit(2)
		}
		idleHelper(os.Args[2], n)
		return
	}
	var opts options
	only := flag.String("only", "", "run only these faults (comma-separated names; -list shows them)")
	list := flag.Bool("list", false, "list the faults and exit")
	flag.BoolVar(&opts.short, "short", false, "a reduced run (fewer faults, less load) for make test")
	flag.StringVar(&opts.bin, "bin", "", "directory holding berth and plugins/demo (as make build writes bin/); default: go build them into a temp dir")
	flag.BoolVar(&opts.keep, "keep", false, "keep the temp dir (configs, host and Redis logs) and print its path")
	flag.IntVar(&opts.idleConns, "idle-conns", 0, "idle connections of the idle-conns fault (default 20000, 2000 with -short)")
	flag.DurationVar(&opts.bound, "bound", 0, "how long after recovery a job may take to reach a final status before it counts as lost (default 30s, 20s with -short)")
	flag.Parse()
	if opts.idleConns <= 0 {
		opts.idleConns = map[bool]int{true: 2000, false: 20000}[opts.short]
	}
	if opts.bound <= 0 {
		opts.bound = map[bool]time.Duration{true: 20 * time.Second, false: 30 * time.Second}[opts.short]
	}
	if *list {
		for _, f := range faults(opts) {
			fmt.Printf("%-20s %s%s\n", f.name, f.what, map[bool]string{true: " (also in -short)", false: ""}[f.short])
		}
		return
	}
	if *only != "" {
		opts.only = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, opts, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// selectFaults returns the faults to run: -only names them (an unknown
// name is an error), -short keeps the short ones.
func selectFaults(all []*fault, only []string, short bool) ([]*fault, error) {
	if len(only) > 0 {
		var out []*fault
		for _, name := range only {
			name = strings.TrimSpace(name)
			found := false
			for _, f := range all {
				if f.name == name {
					out, found = append(out, f), true
				}
			}
			if !found {
				return nil, fmt.Errorf("-only: no fault %q (-list shows them)", name)
			}
		}
		return out, nil
	}
	if !short {
		return all, nil
	}
	var out []*fault
	for _, f := range all {
		if f.short {
			out = append(out, f)
		}
	}
	return out, nil
}

// run builds what it needs, runs the faults and prints the table; ok
// tells whether no job was lost or ran twice at once.
func run(ctx context.Context, opts options, out io.Writer) (bool, error) {
	fs, err := selectFaults(faults(opts), opts.only, opts.short)
	if err != nil {
		return false, err
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return false, errors.New("redis-server not found: install Debian's redis-server (make deps)")
	}
	tmp, err := os.MkdirTemp("", "berth-chaos-")
	if err != nil {
		return false, err
	}
	s := &suite{opts: opts, tmp: tmp, procs: &procSet{},
		transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 16, IdleConnTimeout: 10 * time.Second}}
	defer func() {
		s.procs.killAll()
		s.transport.CloseIdleConnections()
		if opts.keep {
			fmt.Fprintln(out, "chaos: kept", tmp)
		} else {
			_ = os.RemoveAll(tmp)
		}
	}()
	began := time.Now()
	if err := s.build(ctx, out); err != nil {
		return false, err
	}
	fmt.Fprintf(out, "chaos: built in %s; %d faults, %d CPUs, reaper.dead_after %s, bound %s\n",
		fmtDuration(time.Since(began)), len(fs), runtime.NumCPU(), deadAfter, opts.bound)
	var rows []row
	for _, f := range fs {
		if ctx.Err() != nil {
			break
		}
		r := s.runFault(ctx, f)
		if ctx.Err() != nil {
			r.verdict = verdictInterrupted
		}
		fmt.Fprintf(out, "chaos: %-20s %s in %s\n", f.name, r.verdict, fmtDuration(r.took))
		rows = append(rows, r)
	}
	fmt.Fprintln(out)
	printTable(out, rows, opts.bound)
	if ctx.Err() != nil {
		return false, errors.New("interrupted")
	}
	line, ok := summary(rows)
	fmt.Fprintf(out, "\n%s in %s\n", line, fmtDuration(time.Since(began)))
	return ok, nil
}

// build puts berth, the DEMO plugin and the PROBE plugin where the hosts
// find them: plugins are copied into the suite's own plugins directory.
func (s *suite) build(ctx context.Context, out io.Writer) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	s.pluginsDir = filepath.Join(s.tmp, "plugins")
	if err := os.MkdirAll(s.pluginsDir, 0o755); err != nil {
		return err
	}
	gobuild := func(dst, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", dst, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		return nil
	}
	if s.opts.bin != "" {
		s.berthBin, err = filepath.Abs(filepath.Join(s.opts.bin, "berth"))
		if err != nil {
			return err
		}
		if err := copyFile(filepath.Join(s.opts.bin, "plugins", "demo"), filepath.Join(s.pluginsDir, "demo")); err != nil {
			return fmt.Errorf("the DEMO plugin of -bin (make build writes it): %w", err)
		}
		if _, err := os.Stat(s.berthBin); err != nil {
			return fmt.Errorf("-bin: %w (make build writes it)", err)
		}
	} else {
		fmt.Fprintln(out, "chaos: go build berth and the DEMO plugin")
		s.berthBin = filepath.Join(s.tmp, "berth")
		if err := gobuild(s.berthBin, "./host"); err != nil {
			return err
		}
		if err := gobuild(filepath.Join(s.pluginsDir, "demo"), "./plugins/demo"); err != nil {
			return err
		}
	}
	return gobuild(filepath.Join(s.pluginsDir, "probe"), "./host/internal/chaos/probe")
}

func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the suite inside the berth module (go run ./host/internal/chaos)")
	}
	return filepath.Dir(mod), nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// runFault sets a fault's scene up, runs the load, injects the fault,
// waits for the jobs to settle and tallies the row. It always tears the
// scene down.
func (s *suite) runFault(ctx context.Context, f *fault) row {
	began := time.Now()
	r := row{fault: f.name, what: f.what}
	sc, err := s.newScene(f)
	if err != nil {
		r.err, r.verdict, r.took = err.Error(), verdictError, time.Since(began)
		return r
	}
	defer sc.teardown()
	finish := func(recovered time.Time, errText string) row {
		r.t = sc.book.tally(recovered)
		r.err = errText
		r.notes, r.defects = sc.notes, sc.defects
		if sc.skip != "" {
			r.notes = append(r.notes, "skipped: "+sc.skip)
		}
		if sp := sc.book.lostSpan(sc.at); sp != "" && !sc.at.IsZero() {
			r.notes = append(r.notes, sp)
		}
		r.verdict = judge(r.t, f.lossAllowed != "", sc.defects, sc.skip != "", errText)
		if r.t.Lost > 0 && f.lossAllowed != "" {
			r.notes = append(r.notes, "loss allowed: "+f.lossAllowed)
		}
		r.took = time.Since(began)
		return r
	}
	if err := f.setup(ctx, sc); err != nil {
		return finish(time.Now(), "setup: "+err.Error())
	}
	if sc.skip != "" {
		return finish(time.Now(), "")
	}
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		sc.runLoad(lctx)
	}()
	recovered, err := f.inject(ctx, sc)
	errText := ""
	if err != nil {
		errText = "inject: " + err.Error()
		recovered = time.Now()
	}
	// The service must take jobs again after the fault: wait for a few.
	if err == nil {
		want := s.warmJobs() / 2
		if werr := waitFor(ctx, 10*time.Second, 20*time.Millisecond, func() error {
			if n := sc.book.acceptedSince(recovered); n < want {
				return fmt.Errorf("%d jobs accepted after recovery", n)
			}
			return nil
		}); werr != nil {
			sc.defect("fewer than %d jobs accepted in the 10s after recovery (%v)", want, werr)
		}
	}
	stopLoad()
	<-loadDone
	sc.wg.Wait() // submissions in flight end within their 5 s timeout
	last := recovered
	if t := sc.lastAccepted(); t.After(last) {
		last = t
	}
	sc.settle(ctx, last.Add(s.opts.bound))
	for _, fn := range sc.afterSettle {
		fn()
	}
	if f.check != nil {
		f.check(ctx, sc)
	}
	return finish(recovered, errText)
}

// lastAccepted is when the last job was accepted.
func (sc *scene) lastAccepted() time.Time {
	sc.book.mu.Lock()
	defer sc.book.mu.Unlock()
	var t time.Time
	for _, j := range sc.book.jobs {
		if j.accepted.After(t) {
			t = j.accepted
		}
	}
	return t
}

// warmJobs is how many jobs the load gets accepted before a fault; half
// as many must be accepted after it.
func (s *suite) warmJobs() int {
	if s.opts.short {
		return 20
	}
	return 40
}

// outage is how long Redis stays down in the Redis faults.
func (s *suite) outage() time.Duration {
	if s.opts.short {
		return 2 * time.Second
	}
	return 3 * time.Second
}

// defaultLoad is the load of the faults that name none.
func (s *suite) defaultLoad() load {
	if s.opts.short {
		return load{rate: 12, holdMin: 0.2, holdMax: 0.8}
	}
	return load{rate: 20, holdMin: 0.2, holdMax: 0.8}
}
