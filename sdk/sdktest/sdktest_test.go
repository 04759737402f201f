package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for something that must happen.
const waitLimit = 10 * time.Second

// job is an sdk.Job whose Run and Validate each test sets.
type job struct {
	validate func(sdk.Parameters) error
	run      func(sdk.Context, sdk.Parameters) error
}

func (job) MaxFails() uint    { return 1 }
func (job) ShouldRetry() bool { return false }

func (j job) Validate(p sdk.Parameters) error {
	if j.validate == nil {
		return nil
	}
	return j.validate(p)
}

func (j job) Run(ctx sdk.Context, p sdk.Parameters) error { return j.run(ctx, p) }

// waitCtx is a context for WaitCheckin calls that must succeed.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// wait waits for the run to end, failing the test after waitLimit.
func wait(t *testing.T, r *sdktest.Running) sdktest.Result {
	t.Helper()
	res := make(chan sdktest.Result, 1)
	go func() { res <- r.Wait() }()
	select {
	case v := <-res:
		return v
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for the run to end")
	}
	return sdktest.Result{}
}

func TestRunRecords(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
		l := ctx.Logger()
		l.Debug("starting")
		l.With("repo", "library/redis").Info("copying", "n", 3)
		if err := ctx.Checkin("one"); err != nil {
			return err
		}
		l.Warn("slow")
		l.Error("failed once", "err", "timeout")
		id1, err := ctx.LaunchJob(sdk.JobRequest{Name: "SUB", Parameters: sdk.Parameters{"k": "v"}})
		if err != nil {
			return err
		}
		id2, err := ctx.LaunchJob(sdk.JobRequest{Name: "OTHER", ScheduleDelay: 5, Unique: true})
		if err != nil {
			return err
		}
		if id1 == id2 || len(id1) != 24 || len(id2) != 24 {
			return fmt.Errorf("sub-job ids %q and %q", id1, id2)
		}
		if _, err := ctx.LaunchJob(sdk.JobRequest{}); err == nil {
			return errors.New("LaunchJob without a name succeeded")
		}
		return ctx.Checkin("two")
	}}, nil)

	if res.Err != nil {
		t.Fatalf("Err = %v", res.Err)
	}
	if want := []string{"one", "two"}; !slices.Equal(res.CheckIns, want) {
		t.Errorf("CheckIns = %q, want %q", res.CheckIns, want)
	}
	wantLogs := []sdktest.LogLine{
		{Level: slog.LevelDebug, Message: "starting"},
		{Level: slog.LevelInfo, Message: "copying repo=library/redis n=3"},
		{Level: slog.LevelWarn, Message: "slow"},
		{Level: slog.LevelError, Message: "failed once err=timeout"},
	}
	if !slices.Equal(res.Logs, wantLogs) {
		t.Errorf("Logs = %+v, want %+v", res.Logs, wantLogs)
	}
	if len(res.Launched) != 2 || res.Launched[0].Name != "SUB" || res.Launched[0].Parameters["k"] != "v" ||
		res.Launched[1].Name != "OTHER" || res.Launched[1].ScheduleDelay != 5 || !res.Launched[1].Unique {
		t.Errorf("Launched = %+v", res.Launched)
	}
}

func TestRunResult(t *testing.T) {
	t.Parallel()
	errJob := errors.New("registry unreachable")
	tests := []struct {
		name    string
		params  sdk.Parameters
		run     func(sdk.Context, sdk.Parameters) error
		wantErr string // empty for none
		wantRan bool
	}{
		{name: "Success", run: func(sdk.Context, sdk.Parameters) error { return nil }, wantRan: true},
		{name: "JobError", run: func(sdk.Context, sdk.Parameters) error { return errJob },
			wantErr: "registry unreachable", wantRan: true},
		{name: "Panic", run: func(sdk.Context, sdk.Parameters) error { panic("boom") },
			wantErr: "Run panicked: boom", wantRan: true},
		{name: "ChannelParameter", params: sdk.Parameters{"c": make(chan int)},
			wantErr: "cannot travel as JSON"},
		{name: "NaNParameter", params: sdk.Parameters{"x": math.NaN()},
			wantErr: "cannot travel as JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ran := false
			res := sdktest.Run(job{run: func(ctx sdk.Context, p sdk.Parameters) error {
				ran = true
				return tc.run(ctx, p)
			}}, tc.params)
			if ran != tc.wantRan {
				t.Errorf("Run was called: %v, want %v", ran, tc.wantRan)
			}
			if tc.wantErr == "" {
				if res.Err != nil {
					t.Errorf("Err = %v, want nil", res.Err)
				}
				return
			}
			if res.Err == nil || !strings.Contains(res.Err.Error(), tc.wantErr) {
				t.Errorf("Err = %v, want an error containing %q", res.Err, tc.wantErr)
			}
		})
	}
}

func TestRunParametersTravelAsJSON(t *testing.T) {
	t.Parallel()
	type inner struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	in := sdk.Parameters{
		"int":    42,
		"uint":   uint8(7),
		"float":  1.5,
		"string": "s",
		"bool":   true,
		"nil":    nil,
		"slice":  []int{1, 2},
		"map":    map[string]int{"x": 1},
		"struct": inner{A: 3},
	}
	want := sdk.Parameters{
		"int":    float64(42),
		"uint":   float64(7),
		"float":  1.5,
		"string": "s",
		"bool":   true,
		"nil":    nil,
		"slice":  []any{float64(1), float64(2)},
		"map":    map[string]any{"x": float64(1)},
		"struct": map[string]any{"a": float64(3)},
	}
	check := func(p sdk.Parameters) error {
		if got, w := fmt.Sprintf("%#v", p), fmt.Sprintf("%#v", want); got != w {
			return fmt.Errorf("parameters = %s, want %s", got, w)
		}
		return nil
	}
	if res := sdktest.Run(job{run: func(_ sdk.Context, p sdk.Parameters) error { return check(p) }}, in); res.Err != nil {
		t.Errorf("Run: %v", res.Err)
	}
	if err := sdktest.Validate(job{validate: check}, in); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if _, isInt := in["int"].(int); !isInt {
		t.Error("the caller's parameters were changed")
	}
}

func TestRunNilParameters(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(job{run: func(_ sdk.Context, p sdk.Parameters) error {
		if p == nil || len(p) != 0 {
			return fmt.Errorf("parameters = %#v, want an empty map", p)
		}
		return nil
	}}, nil)
	if res.Err != nil {
		t.Error(res.Err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	needsWho := job{validate: func(p sdk.Parameters) error {
		if _, ok := p["who"].(string); !ok {
			return errors.New(`parameter "who" must be a string`)
		}
		return nil
	}}
	tests := []struct {
		name    string
		params  sdk.Parameters
		wantErr string // empty for none
	}{
		{name: "Valid", params: sdk.Parameters{"who": "world"}},
		{name: "Invalid", params: sdk.Parameters{"who": 42}, wantErr: `parameter "who" must be a string`},
		{name: "Missing", params: nil, wantErr: `parameter "who" must be a string`},
		{name: "NotJSON", params: sdk.Parameters{"who": func() {}}, wantErr: "cannot travel as JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sdktest.Validate(needsWho, tc.params)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// untilDone checks in "ready", waits for its context to end and reports
// what it saw as its error.
var untilDone = job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
	if err := ctx.Checkin("ready"); err != nil {
		return err
	}
	<-ctx.Done()
	cmd, ok := ctx.OPCommand()
	if err := ctx.Checkin("after end"); err == nil {
		return errors.New("Checkin succeeded after the context ended")
	}
	return fmt.Errorf("op=%q ok=%v err=%v cause=%v", cmd, ok, ctx.Err(), context.Cause(ctx))
}}

func TestStartStopCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		end     func(r *sdktest.Running)
		wantErr string
	}{
		{"Stop", (*sdktest.Running).Stop, `op="stop" ok=true err=context canceled cause=sdktest: stop requested`},
		{"Cancel", (*sdktest.Running).Cancel, `op="cancel" ok=true err=context canceled cause=sdktest: cancel requested`},
		{"StopThenCancel", func(r *sdktest.Running) { r.Stop(); r.Cancel() },
			`op="stop" ok=true err=context canceled cause=sdktest: stop requested`},
		{"CancelThenStop", func(r *sdktest.Running) { r.Cancel(); r.Stop() },
			`op="cancel" ok=true err=context canceled cause=sdktest: cancel requested`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sdktest.Start(untilDone, nil)
			if err := r.WaitCheckin(waitCtx(t), "ready"); err != nil {
				t.Fatal(err)
			}
			tc.end(r)
			res := wait(t, r)
			if res.Err == nil || res.Err.Error() != tc.wantErr {
				t.Errorf("Err = %v, want %s", res.Err, tc.wantErr)
			}
			if want := []string{"ready"}; !slices.Equal(res.CheckIns, want) {
				t.Errorf("CheckIns = %q, want %q", res.CheckIns, want)
			}
		})
	}
}

// Whatever the interleaving of a stop and a cancel, the command the job
// reads and the cause of its context's end agree.
func TestConcurrentStopCancelAgree(t *testing.T) {
	t.Parallel()
	for range 500 {
		r := sdktest.Start(job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
			<-ctx.Done()
			cmd, _ := ctx.OPCommand()
			if want := fmt.Sprintf("sdktest: %s requested", cmd); context.Cause(ctx).Error() != want {
				return fmt.Errorf("OPCommand = %q but context.Cause = %v", cmd, context.Cause(ctx))
			}
			return nil
		}}, nil)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, end := range []func(){r.Stop, r.Cancel} {
			wg.Go(func() {
				<-start
				end()
			})
		}
		close(start)
		wg.Wait()
		if res := wait(t, r); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
}

func TestWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := sdktest.Start(untilDone, nil, sdktest.WithContext(ctx))
	if err := r.WaitCheckin(waitCtx(t), "ready"); err != nil {
		t.Fatal(err)
	}
	cancel()
	res := wait(t, r)
	if want := `op="" ok=false err=context canceled cause=context canceled`; res.Err == nil || res.Err.Error() != want {
		t.Errorf("Err = %v, want %s", res.Err, want)
	}
}

func TestContextEndsWithRun(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	res := sdktest.Run(job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
		// Work the job leaves behind stops once Run returns, as it does
		// under the host.
		go func() {
			<-ctx.Done()
			ended <- ctx.Err()
		}()
		return nil
	}}, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Error("Err = nil after Done")
		}
	case <-time.After(waitLimit):
		t.Fatal("the job's context is not done after Run returned")
	}
}

func TestWithJobIDAndProperties(t *testing.T) {
	t.Parallel()
	type seen struct {
		id         string
		region     string
		regionOK   bool
		missingOK  bool
		emptyVal   string
		emptyFound bool
	}
	observe := func(out *seen) job {
		return job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
			out.id = ctx.JobID()
			out.region, out.regionOK = ctx.Property("region")
			_, out.missingOK = ctx.Property("missing")
			out.emptyVal, out.emptyFound = ctx.Property("empty")
			return nil
		}}
	}
	tests := []struct {
		name string
		opts []sdktest.Option
		want seen
	}{
		{"Defaults", nil, seen{id: "000000000000000000000001"}},
		{"JobID", []sdktest.Option{sdktest.WithJobID("policy@1700000000")}, seen{id: "policy@1700000000"}},
		{"Properties", []sdktest.Option{sdktest.WithProperties(map[string]string{"region": "eu", "empty": ""})},
			seen{id: "000000000000000000000001", region: "eu", regionOK: true, emptyFound: true}},
		{"Both", []sdktest.Option{sdktest.WithJobID("J"), sdktest.WithProperties(map[string]string{"region": "us"})},
			seen{id: "J", region: "us", regionOK: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			if res := sdktest.Run(observe(&got), nil, tc.opts...); res.Err != nil {
				t.Fatal(res.Err)
			}
			if got != tc.want {
				t.Errorf("the job saw %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWaitCheckin(t *testing.T) {
	t.Parallel()

	t.Run("SkipsOtherMessages", func(t *testing.T) {
		t.Parallel()
		proceed := make(chan struct{})
		r := sdktest.Start(job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
			for _, m := range []string{"a", "b"} {
				if err := ctx.Checkin(m); err != nil {
					return err
				}
			}
			<-proceed
			if err := ctx.Checkin("c"); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}}, nil)
		got := make(chan error, 1)
		ctx := waitCtx(t)
		go func() { got <- r.WaitCheckin(ctx, "c") }()
		select {
		case err := <-got:
			t.Fatalf("WaitCheckin returned %v before the job checked in \"c\"", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(proceed)
		select {
		case err := <-got:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(waitLimit):
			t.Fatal("timed out waiting for WaitCheckin")
		}
		r.Stop()
		if res := wait(t, r); !slices.Equal(res.CheckIns, []string{"a", "b", "c"}) {
			t.Errorf("CheckIns = %q", res.CheckIns)
		}
	})

	t.Run("CheckinJustBeforeEnd", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
			return ctx.Checkin("last")
		}}, nil)
		wait(t, r)
		if err := r.WaitCheckin(waitCtx(t), "last"); err != nil {
			t.Errorf("WaitCheckin after the end = %v, want nil", err)
		}
	})

	t.Run("JobEndsWithoutIt", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(job{run: func(ctx sdk.Context, _ sdk.Parameters) error {
			return ctx.Checkin("other")
		}}, nil)
		err := r.WaitCheckin(waitCtx(t), "never")
		if err == nil || !strings.Contains(err.Error(), `ended without checking in "never"`) {
			t.Errorf("WaitCheckin = %v, want an ended-without error", err)
		}
		wait(t, r)
	})

	t.Run("ParametersNotJSON", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(untilDone, sdk.Parameters{"c": make(chan int)})
		if err := r.WaitCheckin(waitCtx(t), "ready"); err == nil {
			t.Error("WaitCheckin on a run that never started = nil")
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(untilDone, nil)
		defer wait(t, r)
		defer r.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		err := r.WaitCheckin(ctx, "never")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitCheckin = %v, want it to wrap %v", err, context.DeadlineExceeded)
		}
	})
}
