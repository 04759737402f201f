package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// Job types of the load.
const (
	demoJob  = "DEMO"
	probeJob = "PROBE"
)

// load is the job mix of a fault: jobs alternate DEMO and PROBE, each
// holding a random time in [holdMin, holdMax]; with longEvery set, every
// longEvery-th PROBE job holds for a time in longHold instead.
type load struct {
	rate             float64 // submissions per second
	holdMin, holdMax float64 // seconds
	longEvery        int
	longHold         [2]float64
	logLines         int // DEMO's log_lines
}

// scene is one fault's world: its Redis, its hosts, its receivers, its
// load and its book. Everything in it is torn down after the fault.
type scene struct {
	s      *suite
	f      *fault
	dir    string
	ns     string
	book   *book
	hooks  *hookServer
	probes *probeServer
	redis  []*redisNode
	sent   *sentinel
	hosts  []*berthHost
	load   load

	mu      sync.Mutex
	targets []*berthHost
	notes   []string
	defects []string
	skip    string
	mounts  []string
	stopped []int // processes left stopped by the fault (SIGCONT before kill)
	// at is when the fault was injected.
	at time.Time
	// afterSettle runs once the jobs settled, before the tally.
	afterSettle []func()
	next        int
	wg          sync.WaitGroup
}

func (sc *scene) note(format string, args ...any) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.notes = append(sc.notes, fmt.Sprintf(format, args...))
}

// defect records something wrong that is neither a lost job nor a double
// run: it shows in the verdict, not in the exit status.
func (sc *scene) defect(format string, args ...any) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.defects = append(sc.defects, fmt.Sprintf(format, args...))
}

// setTargets sets the hosts the load submits to (as a load balancer
// that took the faulty host out would).
func (sc *scene) setTargets(hs ...*berthHost) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.targets = append([]*berthHost(nil), hs...)
}

func (sc *scene) pick() *berthHost {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.targets) == 0 {
		return nil
	}
	sc.next++
	return sc.targets[sc.next%len(sc.targets)]
}

// anyHost returns a target, or else any host still alive, for reads.
func (sc *scene) anyHost() *berthHost {
	if h := sc.pick(); h != nil {
		return h
	}
	for _, h := range sc.hosts {
		if h.p.alive() {
			return h
		}
	}
	return nil
}

// maxInFlight bounds the submissions waiting for an answer: a host that
// does not answer costs the load ticks, not goroutines.
const maxInFlight = 8

// runLoad submits jobs at the load's rate until ctx ends.
func (sc *scene) runLoad(ctx context.Context) {
	sem := make(chan struct{}, maxInFlight)
	t := time.NewTicker(time.Duration(float64(time.Second) / sc.load.rate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h := sc.pick()
		if h == nil {
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // every slot waits for an answer: skip this tick
		}
		sc.wg.Add(1)
		go func(i int) {
			defer sc.wg.Done()
			defer func() { <-sem }()
			sc.submit(ctx, h, i)
		}(i)
	}
}

// submit posts one job to h and books the answer.
func (sc *scene) submit(ctx context.Context, h *berthHost, i int) {
	l := sc.load
	hold := l.holdMin + rand.Float64()*(l.holdMax-l.holdMin)
	req := client.RequestJob{Name: demoJob, StatusHook: sc.hooks.url, Metadata: &client.Metadata{Kind: client.Generic}}
	if i%2 == 0 {
		req.Parameters = client.Parameters{"image": "demo-chaos", "hold_seconds": hold}
		if l.logLines > 0 {
			req.Parameters["log_lines"] = l.logLines
		}
	} else {
		if l.longEvery > 0 && (i/2)%l.longEvery == 0 {
			hold = l.longHold[0] + rand.Float64()*(l.longHold[1]-l.longHold[0])
		}
		req.Name = probeJob
		req.Parameters = client.Parameters{"report": sc.probes.addr(), "hold_seconds": hold}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	st, err := h.api.Submit(ctx, req)
	if err != nil {
		sc.book.refuse(h.name + ": " + shortErr(err))
		return
	}
	sc.book.accept(st.ID, req.Name, time.Now())
}

// shortErr is the gist of an error for the notes.
func shortErr(err error) string {
	var api *client.APIError
	if errors.As(err, &api) {
		return fmt.Sprintf("HTTP %d %s", api.Status, api.Message)
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i > 0 && len(s) > 80 {
		s = s[i+2:]
	}
	return s
}

// warm waits until the load has had warmJobs jobs accepted and h runs at
// least n PROBE runs, so that the fault hits a steady load in flight.
func (sc *scene) warm(ctx context.Context, h *berthHost, n int) error {
	want := sc.s.warmJobs()
	return waitFor(ctx, 20*time.Second, 20*time.Millisecond, func() error {
		if got := len(sc.book.ids()); got < want {
			return fmt.Errorf("%d jobs accepted, want %d before the fault", got, want)
		}
		got := len(sc.inFlight(h.plugins(), 0))
		if got < n {
			return fmt.Errorf("%s runs %d PROBE jobs, want %d", h.name, got, n)
		}
		return nil
	})
}

// inFlight returns the PROBE jobs with a run alive (a report in the
// last 300 ms) on one of pids, started at least minAge ago.
func (sc *scene) inFlight(pids []int, minAge time.Duration) map[string]bool {
	now := time.Now()
	return sc.book.liveJobs(pids, now.Add(-300*time.Millisecond), now.Add(-minAge))
}

// settle reads, until deadline, every job that is not final at the API
// yet, and waits for the final hooks; then it reads every job once more
// so that the book holds what the API says at the deadline.
func (sc *scene) settle(ctx context.Context, deadline time.Time) {
	for round := 0; round < 10000; round++ {
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		if len(sc.book.unsettled(true, time.Now())) == 0 {
			break
		}
		sc.read(ctx, sc.book.unsettled(false, time.Now()))
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	sc.read(ctx, sc.book.ids())
}

// read GETs jobs, 16 at a time, and books what the API answered.
func (sc *scene) read(ctx context.Context, ids []string) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, id := range ids {
		h := sc.anyHost()
		if h == nil || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := h.api.Get(rctx, id)
			switch {
			case err == nil:
				sc.book.status(id, st.Status, time.Now())
			case errors.Is(err, client.ErrNotFound):
				sc.book.missing(id)
			}
		}()
	}
	wg.Wait()
}

// teardown ends every process of the scene, unmounts what it mounted and
// removes its files.
func (sc *scene) teardown() {
	for _, pid := range sc.stopped {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	for _, h := range sc.hosts {
		if h.p == nil || !h.p.alive() {
			continue
		}
		kids := h.plugins()
		h.p.kill()
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
	sc.s.procs.killAll()
	for _, m := range sc.mounts {
		if err := syscall.Unmount(m, 0); err != nil {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	if sc.hooks != nil {
		sc.hooks.close()
	}
	if sc.probes != nil {
		sc.probes.close()
	}
	if !sc.s.opts.keep {
		_ = os.RemoveAll(sc.dir)
	}
}

// newScene makes the directory, book and receivers of a fault.
func (s *suite) newScene(f *fault) (*scene, error) {
	dir := filepath.Join(s.tmp, f.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sc := &scene{s: s, f: f, dir: dir, ns: "chaos_" + strings.ReplaceAll(f.name, "-", "_"), book: newBook(), load: f.load}
	if sc.load.rate == 0 {
		sc.load = s.defaultLoad()
	}
	var err error
	if sc.hooks, err = startHooks(sc.book); err != nil {
		return nil, err
	}
	if sc.probes, err = startProbes(sc.book); err != nil {
		sc.hooks.close()
		return nil, err
	}
	return sc, nil
}
