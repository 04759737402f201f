package runner

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/joblog"
	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/sdk/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitLimit = 10 * time.Second

// plugin is the plugin host as the runner sees it: each Run does what run
// says; a stop (RunRequest.Stop) is recorded with its reason and closes
// the run's stop channel.
type plugin struct {
	run func(ctx context.Context, req pluginhost.RunRequest, stop <-chan struct{}) (pluginhost.RunResult, error)

	mu      sync.Mutex
	signals []string
	runs    int
}

func (p *plugin) Run(ctx context.Context, req pluginhost.RunRequest) (pluginhost.RunResult, error) {
	p.mu.Lock()
	p.runs++
	p.mu.Unlock()
	stop := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-req.Stop:
		case <-done:
			return
		}
		p.mu.Lock()
		p.signals = append(p.signals, req.StopReason().String()+" "+req.JobID)
		p.mu.Unlock()
		close(stop)
	}()
	return p.run(ctx, req, stop)
}

func (p *plugin) recorded() ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.signals), p.runs
}

// reporter records check-ins and launches.
type reporter struct {
	mu       sync.Mutex
	checkins []string
}

func (r *reporter) Checkin(_ context.Context, id string, rev int64, msgs ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, msg := range msgs {
		r.checkins = append(r.checkins, id+" "+msg)
	}
	return nil
}

func (r *reporter) Launch(_ context.Context, parent string, req []byte) (*job.Stats, error) {
	return &job.Stats{ID: "000000000000000000000sub", UpstreamJobID: parent}, nil
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) Log(level joblog.Level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, level.String()+" "+msg)
}
func (l *lines) Close() error { return nil }

func setup(t *testing.T, p *plugin, opts Options) (*Runner, *reporter) {
	t.Helper()
	r := New(opts)
	rep := &reporter{}
	r.Bind(p, rep)
	return r, rep
}

const id = "0123456789abcdef01234567"

func newAttempt() Attempt {
	return Attempt{ID: id, Name: "DEMO", Revision: 7, Number: 1, Params: []byte(`{}`), Log: &lines{}}
}

// run reserves and runs an attempt.
func run(t *testing.T, r *Runner, ctx context.Context) Outcome {
	t.Helper()
	release, ok := r.Reserve(id)
	if !ok {
		t.Fatal("Reserve refused")
	}
	defer release()
	out, err := r.Run(ctx, newAttempt())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(ctx context.Context, req pluginhost.RunRequest, stop <-chan struct{}) (pluginhost.RunResult, error)
		want Outcome
	}{
		{"Success", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{}, nil
		}, Outcome{Kind: Succeeded}},
		{"JobError", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: "no such image"}, nil
		}, Outcome{Kind: Failed, Err: "no such image"}},
		{"Panic", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: "nil map", Panicked: true}, nil
		}, Outcome{Kind: Failed, Err: "the job panicked: nil map"}},
		{"PluginCrashed", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{}, pluginhost.ErrPluginFailed
		}, Outcome{Kind: Failed, Err: pluginhost.ErrPluginFailed.Error()}},
		{"Permanent", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{Kind: pluginhost.RunFailedPermanently, Err: "wrong password"}, nil
		}, Outcome{Kind: FailedPermanently, Err: "wrong password"}},
		{"Snooze", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{Kind: pluginhost.RunSnoozed, Err: "report not ready", Snooze: 30 * time.Second}, nil
		}, Outcome{Kind: Snoozed, Err: "report not ready", SnoozeFor: 30 * time.Second}},
		{"Output", func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
			return pluginhost.RunResult{Kind: pluginhost.RunSucceeded, Output: []byte(`{"copied":3}`)}, nil
		}, Outcome{Kind: Succeeded, Output: []byte(`{"copied":3}`)}},
		{"AttemptAndRevisionReachThePlugin", func(_ context.Context, req pluginhost.RunRequest, _ <-chan struct{}) (pluginhost.RunResult, error) {
			if req.Attempt != 1 || req.Revision != 7 || string(req.Parameters) != "{}" || !req.Deadline.IsZero() {
				return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: fmt.Sprintf("request %+v", req)}, nil
			}
			return pluginhost.RunResult{}, nil
		}, Outcome{Kind: Succeeded}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := setup(t, &plugin{run: tc.run}, Options{})
			if got := run(t, r, context.Background()); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("outcome %+v, want %+v", got, tc.want)
			}
		})
	}
}

// holding runs until its context ends or it is signalled.
func holding(ctx context.Context, _ pluginhost.RunRequest, stop <-chan struct{}) (pluginhost.RunResult, error) {
	select {
	case <-ctx.Done():
		return pluginhost.RunResult{}, ctx.Err()
	case <-stop:
		return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: "stopped"}, nil
	}
}

func TestStopIsRelayedToThePlugin(t *testing.T) {
	t.Parallel()
	for _, op := range []job.Action{job.ActionStop, job.ActionCancel} {
		t.Run(string(op), func(t *testing.T) {
			t.Parallel()
			p := &plugin{run: holding}
			r, _ := setup(t, p, Options{StopGrace: time.Hour})
			done := make(chan Outcome, 1)
			release, _ := r.Reserve(id)
			defer release()
			go func() { out, _ := r.Run(context.Background(), newAttempt()); done <- out }()
			waitRunning(t, r)
			r.Signal(id, op)
			r.Signal(id, job.ActionStop) // the first request wins
			out := wait(t, done)
			if out.Kind != Stopped || out.Op != op {
				t.Fatalf("outcome %+v, want Stopped by %s", out, op)
			}
			want := "STOP_REASON_STOP " + id
			if op == job.ActionCancel {
				want = "STOP_REASON_CANCEL " + id
			}
			if signals, _ := p.recorded(); len(signals) != 1 || signals[0] != want {
				t.Fatalf("signals %q, want [%s]", signals, want)
			}
		})
	}
}

func TestAStopBeforeTheRunBeginsEndsItAtOnce(t *testing.T) {
	t.Parallel()
	p := &plugin{run: holding}
	r, _ := setup(t, p, Options{StopGrace: time.Hour})
	release, _ := r.Reserve(id)
	defer release()
	r.Signal(id, job.ActionStop) // reserved, not yet running
	done := make(chan Outcome, 1)
	go func() { out, _ := r.Run(context.Background(), newAttempt()); done <- out }()
	if out := wait(t, done); out.Kind != Stopped || out.Op != job.ActionStop {
		t.Fatalf("outcome %+v; want Stopped", out)
	}
}

func TestAStopBeforeTheRunBeginsNeverReachesThePlugin(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"stop", "revoke"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			p := &plugin{run: holding}
			r, _ := setup(t, p, Options{StopGrace: time.Hour})
			release, _ := r.Reserve(id)
			defer release()
			if op == "stop" {
				r.Signal(id, job.ActionStop)
			} else {
				r.Revoke(id, "lost")
			}
			out, err := r.Run(context.Background(), newAttempt())
			if err != nil {
				t.Fatal(err)
			}
			want := Outcome{Kind: Stopped, Op: job.ActionStop}
			if op == "revoke" {
				want = Outcome{Kind: LeaseLost, Lost: "lost"}
			}
			if !reflect.DeepEqual(out, want) {
				t.Fatalf("outcome %+v, want %+v", out, want)
			}
			if _, runs := p.recorded(); runs != 0 {
				t.Fatalf("the plugin was called %d times for a job stopped before its run", runs)
			}
		})
	}
}

// A run given up for its lease ends at once: the plugin is told as at a
// shutdown, and the attempt is LeaseLost whatever the job returned, also
// when an operator's stop came first.
func TestRevokeEndsTheRunAsLeaseLost(t *testing.T) {
	t.Parallel()
	for _, stopFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("StopFirst=%v", stopFirst), func(t *testing.T) {
			t.Parallel()
			p := &plugin{run: holding}
			r, _ := setup(t, p, Options{StopGrace: time.Hour})
			release, _ := r.Reserve(id)
			defer release()
			done := make(chan Outcome, 1)
			go func() { out, _ := r.Run(context.Background(), newAttempt()); done <- out }()
			waitRunning(t, r)
			if stopFirst {
				r.Signal(id, job.ActionStop)
			}
			r.Revoke(id, "its lease was lost")
			r.Revoke(id, "twice")
			r.Signal(id, job.ActionCancel) // too late to matter
			out := wait(t, done)
			if out.Kind != LeaseLost || out.Lost != "its lease was lost" {
				t.Fatalf("outcome %+v, want LeaseLost", out)
			}
			// One stop reaches the plugin; after an operator's stop it may
			// say either reason, as the plugin reads it when it hears the
			// stop.
			signals, _ := p.recorded()
			ok := len(signals) == 1 && signals[0] == "STOP_REASON_SHUTDOWN "+id
			if stopFirst && len(signals) == 1 && signals[0] == "STOP_REASON_STOP "+id {
				ok = true
			}
			if !ok {
				t.Fatalf("signals %q, want one stop", signals)
			}
		})
	}
	// Revoke of a job that does not run here, or whose run is over (its
	// outcome is being recorded), gives nothing up.
	r, _ := setup(t, &plugin{run: func(context.Context, pluginhost.RunRequest, <-chan struct{}) (pluginhost.RunResult, error) {
		return pluginhost.RunResult{}, nil
	}}, Options{})
	if r.Revoke("000000000000000000000000", "lost") {
		t.Fatal("Revoke of a job that does not run here answered true")
	}
	release, _ := r.Reserve(id)
	defer release()
	if out, err := r.Run(context.Background(), newAttempt()); err != nil || out.Kind != Succeeded {
		t.Fatalf("Run = %+v, %v", out, err)
	}
	if r.Revoke(id, "lost") {
		t.Fatal("Revoke of a run that is over answered true")
	}
}

func TestAPluginThatIgnoresTheStopIsCancelledAfterTheGrace(t *testing.T) {
	t.Parallel()
	done := make(chan Outcome, 1)
	// A plugin that takes the signal but does not return within the grace.
	p2 := &plugin{run: func(ctx context.Context, _ pluginhost.RunRequest, _ <-chan struct{}) (pluginhost.RunResult, error) {
		<-ctx.Done()
		return pluginhost.RunResult{}, context.Cause(ctx)
	}}
	r2, _ := setup(t, p2, Options{StopGrace: 20 * time.Millisecond})
	release2, _ := r2.Reserve(id)
	defer release2()
	go func() { out, _ := r2.Run(context.Background(), newAttempt()); done <- out }()
	waitRunning(t, r2)
	r2.Signal(id, job.ActionCancel)
	if out := wait(t, done); out.Kind != Stopped || out.Op != job.ActionCancel {
		t.Fatalf("outcome %+v", out)
	}
}

func TestTimeoutAndShutdown(t *testing.T) {
	t.Parallel()
	r, _ := setup(t, &plugin{run: holding}, Options{JobTimeout: 20 * time.Millisecond})
	out := run(t, r, context.Background())
	if out.Kind != Failed || !strings.Contains(out.Err, "job_timeout") {
		t.Fatalf("outcome %+v, want a failure naming job_timeout", out)
	}
	r2, _ := setup(t, &plugin{run: holding}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Outcome, 1)
	release, _ := r2.Reserve(id)
	defer release()
	go func() { out, _ := r2.Run(ctx, newAttempt()); done <- out }()
	waitRunning(t, r2)
	cancel()
	if out := wait(t, done); out.Kind != Interrupted {
		t.Fatalf("outcome %+v, want Interrupted", out)
	}
}

func TestReserveAndCallbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var r *Runner
	var rep *reporter
	log := &lines{}
	r, rep = setup(t, &plugin{run: func(ctx context.Context, req pluginhost.RunRequest, _ <-chan struct{}) (pluginhost.RunResult, error) {
		if err := r.Checkin(ctx, req.JobID, "half"); err != nil {
			return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: err.Error()}, nil
		}
		if err := r.Checkin(ctx, req.JobID, ""); err == nil {
			return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: "an empty check-in was taken"}, nil
		}
		if err := r.Log(ctx, req.JobID, []*proto.LogEntry{{Level: proto.LogLevel_LOG_LEVEL_WARNING, Message: "careful"}}); err != nil {
			return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: err.Error()}, nil
		}
		raw, err := r.LaunchJob(ctx, req.JobID, []byte(`{"name":"SUB"}`))
		if err != nil || !strings.Contains(string(raw), `"upstream_job_id":"`+req.JobID+`"`) {
			return pluginhost.RunResult{Kind: pluginhost.RunFailed, Err: "launch: " + string(raw)}, nil
		}
		return pluginhost.RunResult{}, nil
	}}, Options{})
	if err := r.Checkin(ctx, id, "not running"); err == nil {
		t.Fatal("a check-in of a job not running here was taken")
	}
	release, ok := r.Reserve(id)
	if !ok {
		t.Fatal("Reserve refused")
	}
	if _, again := r.Reserve(id); again {
		t.Fatal("a second Reserve of a running job was taken")
	}
	if err := r.Checkin(ctx, id, "reserved, not started"); err == nil {
		t.Fatal("a check-in before the run began was taken")
	}
	a := newAttempt()
	a.Log = log
	out, err := r.Run(ctx, a)
	release()
	if err != nil || out.Kind != Succeeded {
		t.Fatalf("Run = %+v, %v", out, err)
	}
	if len(rep.checkins) != 1 || rep.checkins[0] != id+" half" {
		t.Fatalf("check-ins %q", rep.checkins)
	}
	if len(log.l) != 1 || log.l[0] != "WARNING careful" {
		t.Fatalf("log %q", log.l)
	}
	if _, err := r.Run(ctx, newAttempt()); !errors.Is(err, ErrNotReserved) {
		t.Fatalf("Run without Reserve: %v", err)
	}
	if len(r.Running()) != 0 {
		t.Fatalf("still running: %v", r.Running())
	}
}

func TestOnSignal(t *testing.T) {
	t.Parallel()
	p := &plugin{run: holding}
	r, _ := setup(t, p, Options{StopGrace: time.Hour})
	done := make(chan Outcome, 1)
	release, _ := r.Reserve(id)
	defer release()
	go func() { out, _ := r.Run(context.Background(), newAttempt()); done <- out }()
	waitRunning(t, r)
	for _, bad := range []string{"", "stop", "pause " + id, "stop" + id} {
		r.OnSignal(bad)
	}
	r.OnSignal("stop 000000000000000000000000") // another job
	select {
	case out := <-done:
		t.Fatalf("a malformed or foreign signal ended the run: %+v", out)
	default:
	}
	r.OnSignal("cancel " + id)
	if out := wait(t, done); out.Kind != Stopped || out.Op != job.ActionCancel {
		t.Fatalf("outcome %+v", out)
	}
}

// waitRunning waits until the attempt's run began.
func waitRunning(t *testing.T, r *Runner) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for r.started(id) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the run never began")
		}
		time.Sleep(time.Millisecond)
	}
}

func wait(t *testing.T, done <-chan Outcome) Outcome {
	t.Helper()
	select {
	case out := <-done:
		return out
	case <-time.After(waitLimit):
		t.Fatal("the run did not end")
	}
	return Outcome{}
}
