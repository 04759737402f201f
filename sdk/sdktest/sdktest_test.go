package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/internal/core"
	"github.com/berth-dev/berth/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for something that must happen.
const waitLimit = 10 * time.Second

// fn is a job type of a function, with the default retry rules.
type fn[P any] struct {
	sdk.Defaults
	run func(sdk.Context, P) error
}

func (f fn[P]) Run(ctx sdk.Context, p P) error { return f.run(ctx, p) }

// checked is fn with a Validate.
type checked[P any] struct {
	fn[P]
	validate func(P) error
}

func (c checked[P]) Validate(p P) error { return c.validate(p) }

var _ sdk.Validator[copyParams] = checked[copyParams]{}

// jobOf makes a job of run, taking its parameters undecoded.
func jobOf(run func(sdk.Context, sdk.Parameters) error) sdk.Job {
	return sdk.Typed[sdk.Parameters](fn[sdk.Parameters]{run: run})
}

// copyParams are typed parameters with bounds.
type copyParams struct {
	Image string `json:"image"`
	Tags  int    `json:"tags,omitempty" jsonschema:"minimum=1,maximum=10"`
}

// quietPeriod is how long a test watches for something that must not
// happen; a correct sdktest never does it, so this only decides how likely
// a broken one is caught.
const quietPeriod = 50 * time.Millisecond

// waitCtx is a context for WaitCheckin calls that must succeed.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// fakeTB records the failures sdktest reports instead of failing the test.
type fakeTB struct {
	testing.TB // the real test: Cleanup, Name...

	mu       sync.Mutex
	failures []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// failures runs body with a fakeTB, as a test function would run, and
// returns what it reported.
func failures(t *testing.T, body func(tb testing.TB)) []string {
	t.Helper()
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(tb)
	}()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("timed out running a test body")
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.failures
}

func TestRunRecords(t *testing.T) {
	t.Parallel()
	var ids []string
	res := sdktest.Run(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
		l := ctx.Logger()
		l.Debug("starting")
		l.With("repo", "library/redis").Info("copying", "n", 3)
		if err := ctx.Checkin("one"); err != nil {
			return err
		}
		l.WithGroup("req").Warn("slow", "path", "/v2/a b", "took", 1500*time.Millisecond)
		l.Error("failed once", "err", `say "no"`)
		l.Log(context.Background(), slog.LevelError+4, "gave up")
		for _, req := range []sdk.JobRequest{
			{Name: "SUB", Parameters: sdk.Parameters{"k": "v"}},
			{Name: "LATER", ScheduleDelay: 5, Unique: true, StatusHook: "http://hook"},
		} {
			id, err := ctx.LaunchJob(req)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if _, err := ctx.LaunchJob(sdk.JobRequest{}); err == nil {
			return errors.New("LaunchJob without a name succeeded")
		}
		return ctx.Checkin("two")
	}), nil)

	if res.Kind != sdktest.Succeeded || res.Err != nil {
		t.Fatalf("Kind = %s, Err = %v", res.Kind, res.Err)
	}
	if want := []string{"one", "two"}; !slices.Equal(res.CheckIns, want) {
		t.Errorf("CheckIns = %q, want %q", res.CheckIns, want)
	}
	wantLogs := []sdktest.LogLine{
		{Level: "DEBUG", Message: "starting"},
		{Level: "INFO", Message: "copying repo=library/redis n=3"},
		{Level: "WARNING", Message: `slow req.path="/v2/a b" req.took=1.5s`},
		{Level: "ERROR", Message: `failed once err="say \"no\""`},
		{Level: "FATAL", Message: "gave up"},
	}
	if !slices.Equal(res.Logs, wantLogs) {
		t.Errorf("Logs = %q\nwant   %q", res.Logs, wantLogs)
	}
	wantLaunched := []string{
		`{"name":"SUB","parameters":{"k":"v"},"metadata":{"kind":"Generic","unique":false}}`,
		`{"name":"LATER","status_hook":"http://hook","metadata":{"kind":"Scheduled","schedule_delay":5,"unique":true}}`,
	}
	var launched []string
	for _, l := range res.Launched {
		launched = append(launched, string(l))
	}
	if !slices.Equal(launched, wantLaunched) {
		t.Errorf("Launched = %s\nwant       %s", launched, wantLaunched)
	}
	if want := []string{"000000000000000000000001", "000000000000000000000002"}; !slices.Equal(ids, want) {
		t.Errorf("LaunchJob returned %q, want %q", ids, want)
	}
}

// errEmpty is an error without a message.
type errEmpty struct{}

func (errEmpty) Error() string { return "" }

func TestRunOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		run      func(sdk.Context, sdk.Parameters) error
		kind     sdktest.Kind
		err      string // "" for nil
		output   string // "" for none
		snooze   time.Duration
		panicked bool
	}{
		{name: "Success", run: func(sdk.Context, sdk.Parameters) error { return nil }, kind: sdktest.Succeeded},
		{name: "SuccessWithOutput", run: func(ctx sdk.Context, _ sdk.Parameters) error {
			return ctx.SetOutput(map[string]any{"copied": 3, "tags": []string{"a"}})
		}, kind: sdktest.Succeeded, output: `{"copied":3,"tags":["a"]}`},
		{name: "OutputTooLarge", run: func(ctx sdk.Context, _ sdk.Parameters) error {
			return ctx.SetOutput(strings.Repeat("x", core.MaxOutputBytes))
		}, kind: sdktest.Failed, err: fmt.Sprintf("sdk: the output is %d bytes of JSON, more than the %d allowed", core.MaxOutputBytes+2, core.MaxOutputBytes)},
		{name: "Failed", run: func(sdk.Context, sdk.Parameters) error { return errors.New("registry unreachable") },
			kind: sdktest.Failed, err: "registry unreachable"},
		{name: "FailedWithoutMessage", run: func(sdk.Context, sdk.Parameters) error { return errEmpty{} },
			kind: sdktest.Failed, err: "the job returned an error with no message (sdktest_test.errEmpty)"},
		{name: "FailedPermanently", run: func(sdk.Context, sdk.Parameters) error {
			return fmt.Errorf("login: %w", sdk.Permanent(errors.New("wrong password")))
		}, kind: sdktest.FailedPermanently, err: "login: wrong password"},
		{name: "Snoozed", run: func(sdk.Context, sdk.Parameters) error { return sdk.Snooze(90*time.Second, "report not ready") },
			kind: sdktest.Snoozed, err: "snoozed for 1m30s: report not ready", snooze: 90 * time.Second},
		{name: "SnoozedAtLeastASecond", run: func(sdk.Context, sdk.Parameters) error { return sdk.Snooze(0, "soon") },
			kind: sdktest.Snoozed, err: "snoozed for 1s: soon", snooze: time.Second},
		{name: "Panic", run: func(sdk.Context, sdk.Parameters) error { panic("boom") },
			kind: sdktest.Failed, err: "Run panicked: boom", panicked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := sdktest.Run(t, jobOf(tc.run), nil)
			if res.Kind != tc.kind {
				t.Errorf("Kind = %s, want %s", res.Kind, tc.kind)
			}
			if got := fmt.Sprint(res.Err); tc.err == "" && res.Err != nil || tc.err != "" && got != tc.err {
				t.Errorf("Err = %v, want %q", res.Err, tc.err)
			}
			if string(res.Output) != tc.output {
				t.Errorf("Output = %s, want %s", res.Output, tc.output)
			}
			if res.SnoozeFor != tc.snooze || res.Panicked != tc.panicked {
				t.Errorf("SnoozeFor = %v, Panicked = %v, want %v, %v", res.SnoozeFor, res.Panicked, tc.snooze, tc.panicked)
			}
			if tc.panicked && (len(res.Logs) != 1 || res.Logs[0].Level != "ERROR" || !strings.HasPrefix(res.Logs[0].Message, "Run panicked: boom\n")) {
				t.Errorf("Logs = %q, want the panic and its stack", res.Logs)
			}
		})
	}
}

// Parameters travel as JSON, as they do through the host: a job taking
// sdk.Parameters gets float64 numbers and plain maps and lists.
func TestParametersTravelAsJSON(t *testing.T) {
	t.Parallel()
	type inner struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	in := map[string]any{
		"int": 42, "uint": uint8(7), "float": 1.5, "string": "s", "bool": true, "nil": nil,
		"slice": []int{1, 2}, "map": map[string]int{"x": 1}, "struct": inner{A: 3},
	}
	want := fmt.Sprintf("%#v", sdk.Parameters{
		"int": float64(42), "uint": float64(7), "float": 1.5, "string": "s", "bool": true, "nil": nil,
		"slice": []any{float64(1), float64(2)}, "map": map[string]any{"x": float64(1)}, "struct": map[string]any{"a": float64(3)},
	})
	check := func(p sdk.Parameters) error {
		if got := fmt.Sprintf("%#v", p); got != want {
			return fmt.Errorf("parameters = %s\nwant %s", got, want)
		}
		return nil
	}
	if res := sdktest.Run(t, jobOf(func(_ sdk.Context, p sdk.Parameters) error { return check(p) }), in); res.Err != nil {
		t.Errorf("Run: %v", res.Err)
	}
	job := sdk.Typed[sdk.Parameters](checked[sdk.Parameters]{validate: check,
		fn: fn[sdk.Parameters]{run: func(sdk.Context, sdk.Parameters) error { return nil }}})
	if err := sdktest.Validate(t, job, in); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if _, isInt := in["int"].(int); !isInt {
		t.Error("the caller's parameters were changed")
	}
}

// nil parameters are the empty object, whatever the job takes.
func TestNilParametersAreTheEmptyObject(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(t, jobOf(func(_ sdk.Context, p sdk.Parameters) error {
		if p == nil || len(p) != 0 {
			return fmt.Errorf("parameters = %#v, want an empty map", p)
		}
		return nil
	}), nil)
	if res.Err != nil {
		t.Error(res.Err)
	}
	type optional struct {
		N int `json:"n,omitempty"`
	}
	res = sdktest.Run(t, sdk.Typed[optional](fn[optional]{run: func(_ sdk.Context, p optional) error {
		return sdk.Snooze(time.Duration(p.N+1)*time.Second, "")
	}}), nil)
	if res.Kind != sdktest.Snoozed || res.SnoozeFor != time.Second {
		t.Errorf("Run with nil parameters: %s %v", res.Kind, res.Err)
	}
}

// Run decodes a struct's parameters strictly: an unknown parameter or a
// wrong type fails the run for good, naming the parameter, and Run is not
// called. (The host refuses such a submission before; this is a job
// started with parameters the schema did not check.)
func TestStructParametersDecodeStrictly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params any
		want   string // "" for a run that succeeds
	}{
		{"Valid", map[string]any{"image": "demo", "tags": 2}, ""},
		{"StructParameters", copyParams{Image: "demo"}, ""},
		{"Unknown", map[string]any{"image": "demo", "tag": 2}, `the parameters do not decode: unknown parameter "tag"`},
		{"WrongType", map[string]any{"image": "demo", "tags": "two"}, `the parameters do not decode: parameter "tags" must be a whole number, got string`},
		{"Fraction", map[string]any{"image": "demo", "tags": 1.5}, `the parameters do not decode: parameter "tags" must be a whole number, got number 1.5`},
		{"NotAnObject", []int{1}, "the parameters do not decode: the parameters are not a JSON object of the expected shape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got copyParams
			ran := false
			res := sdktest.Run(t, sdk.Typed[copyParams](fn[copyParams]{run: func(_ sdk.Context, p copyParams) error {
				ran, got = true, p
				return nil
			}}), tc.params)
			if tc.want == "" {
				if res.Kind != sdktest.Succeeded || got.Image != "demo" {
					t.Errorf("Run: %s %v, decoded %+v", res.Kind, res.Err, got)
				}
				return
			}
			if res.Kind != sdktest.FailedPermanently || res.Err == nil || !strings.HasPrefix(res.Err.Error(), tc.want) {
				t.Errorf("Run: %s %v, want a permanent failure %q", res.Kind, res.Err, tc.want)
			}
			if ran {
				t.Error("Run was called with parameters that do not decode")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	calls := make(chan copyParams, 100)
	job := sdk.Typed[copyParams](checked[copyParams]{
		fn: fn[copyParams]{run: func(sdk.Context, copyParams) error { return nil }},
		validate: func(p copyParams) error {
			calls <- p
			switch {
			case p.Image == "panic":
				panic("boom")
			case !strings.HasPrefix(p.Image, "demo"):
				return fmt.Errorf(`parameter "image" must start with "demo", got %q`, p.Image)
			}
			return nil
		}})
	tests := []struct {
		name      string
		params    any
		want      string // "" for valid
		validated bool   // the job's Validate was called
	}{
		{"Valid", map[string]any{"image": "demo/x", "tags": 10}, "", true},
		{"Required", nil, `parameter "image" is required`, false},
		{"Type", map[string]any{"image": 7}, `parameter "image" must be a string, got 7`, false},
		{"Bounds", map[string]any{"image": "demo", "tags": 11}, `parameter "tags" must be a whole number from 1 to 10, got 11`, false},
		{"Unknown", map[string]any{"image": "demo", "tag": 1}, `unknown parameter "tag" (known: image, tags)`, false},
		{"Several", map[string]any{"tags": 0}, `parameter "image" is required; parameter "tags" must be a whole number from 1 to 10, got 0`, false},
		{"JobsOwnCheck", map[string]any{"image": "library/redis"}, `parameter "image" must start with "demo", got "library/redis"`, true},
		{"PanicIsAnError", map[string]any{"image": "panic"}, "Validate panicked: boom", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: calls tells which subtest called Validate.
			err := sdktest.Validate(t, job, tc.params)
			if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && got != tc.want {
				t.Errorf("Validate = %v\nwant       %s", err, tc.want)
			}
			called := false
			select {
			case <-calls:
				called = true
			default:
			}
			if called != tc.validated {
				t.Errorf("the job's Validate was called: %v, want %v", called, tc.validated)
			}
		})
	}
}

// A job without a Validate, or without a schema, checks what it has.
func TestValidateWithoutSchemaOrValidator(t *testing.T) {
	t.Parallel()
	anything := jobOf(func(sdk.Context, sdk.Parameters) error { return nil })
	if err := sdktest.Validate(t, anything, map[string]any{"whatever": []int{1}}); err != nil {
		t.Errorf("Validate of a job without schema or Validate = %v", err)
	}
	schemaOnly := sdk.Typed[copyParams](fn[copyParams]{run: func(sdk.Context, copyParams) error { return nil }})
	if err := sdktest.Validate(t, schemaOnly, map[string]any{"image": "anything"}); err != nil {
		t.Errorf("Validate of a valid submission = %v", err)
	}
	if err := sdktest.Validate(t, schemaOnly, map[string]any{}); err == nil || err.Error() != `parameter "image" is required` {
		t.Errorf("Validate of a job with a schema only = %v", err)
	}
}

// untilDone checks in "ready", waits for its context to end and reports
// what it saw as its error.
var untilDone = jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
	if err := ctx.Checkin("ready"); err != nil {
		return err
	}
	<-ctx.Done()
	cmd, ok := ctx.OPCommand()
	return fmt.Errorf("op=%q ok=%v err=%v cause=%v", cmd, ok, ctx.Err(), context.Cause(ctx))
})

func TestStartAndEnd(t *testing.T) {
	t.Parallel()
	const (
		stopped   = "the job was asked to stop"
		cancelled = "the job was asked to cancel"
		shutdown  = "the host is shutting down; the job will run again on another host"
	)
	tests := []struct {
		name string
		end  func(r *sdktest.Running)
		want string
	}{
		{"Stop", (*sdktest.Running).Stop, `op="stop" ok=true err=context canceled cause=` + stopped},
		{"Cancel", (*sdktest.Running).Cancel, `op="cancel" ok=true err=context canceled cause=` + cancelled},
		{"Shutdown", (*sdktest.Running).Shutdown, `op="" ok=false err=context canceled cause=` + shutdown},
		{"StopThenCancel", func(r *sdktest.Running) { r.Stop(); r.Cancel() }, `op="stop" ok=true err=context canceled cause=` + stopped},
		{"CancelThenStop", func(r *sdktest.Running) { r.Cancel(); r.Stop() }, `op="cancel" ok=true err=context canceled cause=` + cancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sdktest.Start(t, untilDone, nil)
			if err := r.WaitCheckin(waitCtx(t), "ready"); err != nil {
				t.Fatal(err)
			}
			tc.end(r)
			res := r.Wait()
			if res.Kind != sdktest.Failed || res.Err == nil || res.Err.Error() != tc.want {
				t.Errorf("%s: %v\nwant   %s", res.Kind, res.Err, tc.want)
			}
			if want := []string{"ready"}; !slices.Equal(res.CheckIns, want) {
				t.Errorf("CheckIns = %q, want %q", res.CheckIns, want)
			}
		})
	}
}

// Whatever the interleaving of a stop and a cancel sent at once, the
// first to arrive wins: the command the job reads and the cause of its
// context's end agree.
func TestConcurrentStopAndCancelAgree(t *testing.T) {
	t.Parallel()
	causes := map[sdk.OPCommand]string{sdk.OPStop: "the job was asked to stop", sdk.OPCancel: "the job was asked to cancel"}
	for i := range 20 {
		r := sdktest.Start(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
			<-ctx.Done()
			cmd, _ := ctx.OPCommand()
			if got := context.Cause(ctx).Error(); got != causes[cmd] {
				return fmt.Errorf("OPCommand = %q but context.Cause = %v", cmd, got)
			}
			return sdk.Permanent(errors.New(string(cmd)))
		}), nil, sdktest.WithJobID(fmt.Sprint(i)))
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
		if res := r.Wait(); res.Kind != sdktest.FailedPermanently {
			t.Fatalf("run %d: %s %v", i, res.Kind, res.Err)
		}
	}
}

// A job that returns nil once its context ended has not succeeded: it is
// reported failed with the cause, as the host does.
func TestEndedJobReturningNilFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(r *sdktest.Running)
		want string
	}{
		{"Stop", (*sdktest.Running).Stop, "the job was asked to stop"},
		{"Cancel", (*sdktest.Running).Cancel, "the job was asked to cancel"},
		{"Shutdown", (*sdktest.Running).Shutdown, "the host is shutting down; the job will run again on another host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sdktest.Start(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
				if err := ctx.Checkin("ready"); err != nil {
					return err
				}
				<-ctx.Done()
				return ctx.SetOutput("done anyway")
			}), nil)
			if err := r.WaitCheckin(waitCtx(t), "ready"); err != nil {
				t.Fatal(err)
			}
			tc.end(r)
			if res := r.Wait(); res.Kind != sdktest.Failed || fmt.Sprint(res.Err) != tc.want || res.Output != nil {
				t.Errorf("%s %v %s, want failed: %s", res.Kind, res.Err, res.Output, tc.want)
			}
		})
	}
}

// A job that returns its context's cause after the host's shutdown reports
// the shutdown.
func TestShutdownReportsItsCause(t *testing.T) {
	t.Parallel()
	r := sdktest.Start(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
		if err := ctx.Checkin("ready"); err != nil {
			return err
		}
		<-ctx.Done()
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}), nil)
	if err := r.WaitCheckin(waitCtx(t), "ready"); err != nil {
		t.Fatal(err)
	}
	r.Shutdown()
	if res := r.Wait(); res.Kind != sdktest.Failed || fmt.Sprint(res.Err) != "interrupted: the host is shutting down; the job will run again on another host" {
		t.Errorf("%s %v", res.Kind, res.Err)
	}
}

func TestContextEndsWithRun(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	res := sdktest.Run(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
		// Work the job leaves behind stops once Run returns, as under the host.
		go func() {
			<-ctx.Done()
			ended <- ctx.Err()
		}()
		return nil
	}), nil)
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

func TestRunOptions(t *testing.T) {
	t.Parallel()
	observe := jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
		var props []string
		for _, k := range []string{"job_id", "job_name", "revision", "region", "empty", "missing"} {
			if v, ok := ctx.Property(k); ok {
				props = append(props, k+"="+v)
			}
		}
		return ctx.SetOutput(fmt.Sprintf("%s %d %s", ctx.JobID(), ctx.Attempt(), strings.Join(props, ",")))
	})
	tests := []struct {
		name string
		opts []sdktest.Option
		want string
	}{
		{"Defaults", nil, `"000000000000000000000001 1 job_id=000000000000000000000001,job_name=JOB,revision=1"`},
		{"JobID", []sdktest.Option{sdktest.WithJobID("policy@1700000000")}, `"policy@1700000000 1 job_id=policy@1700000000,job_name=JOB,revision=1"`},
		{"Attempt", []sdktest.Option{sdktest.WithAttempt(3)}, `"000000000000000000000001 3 job_id=000000000000000000000001,job_name=JOB,revision=1"`},
		{"Properties", []sdktest.Option{sdktest.WithProperties(map[string]string{"region": "eu", "empty": ""})},
			`"000000000000000000000001 1 job_id=000000000000000000000001,job_name=JOB,revision=1,region=eu,empty="`},
		{"All", []sdktest.Option{sdktest.WithJobID("J"), sdktest.WithAttempt(2), sdktest.WithProperties(map[string]string{"region": "us"})},
			`"J 2 job_id=J,job_name=JOB,revision=1,region=us"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if res := sdktest.Run(t, observe, nil, tc.opts...); string(res.Output) != tc.want {
				t.Errorf("the job saw %s (%v), want %s", res.Output, res.Err, tc.want)
			}
		})
	}
}

// WithTimeout gives the run a deadline, as job_timeout does: its context
// ends with a cause that names job_timeout.
func TestWithTimeout(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline")
		}
		<-ctx.Done()
		return fmt.Errorf("err=%v cause=%v", ctx.Err(), context.Cause(ctx))
	}), nil, sdktest.WithTimeout(50*time.Millisecond))
	if want := "err=context deadline exceeded cause=the job ran past its deadline (job_timeout)"; res.Kind != sdktest.Failed || fmt.Sprint(res.Err) != want {
		t.Errorf("%s %v, want %s", res.Kind, res.Err, want)
	}
}

func TestWaitCheckin(t *testing.T) {
	t.Parallel()

	t.Run("SkipsOtherMessages", func(t *testing.T) {
		t.Parallel()
		proceed := make(chan struct{})
		r := sdktest.Start(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error {
			for _, m := range []string{"a", "b"} {
				if err := ctx.Checkin(m); err != nil {
					return err
				}
			}
			<-proceed
			return ctx.Checkin("c")
		}), nil)
		ctx := waitCtx(t)
		if err := r.WaitCheckin(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- r.WaitCheckin(ctx, "c") }()
		select {
		case err := <-got:
			t.Fatalf("WaitCheckin returned %v before the job checked in \"c\"", err)
		case <-time.After(quietPeriod):
		}
		close(proceed)
		if err := <-got; err != nil {
			t.Error(err)
		}
		if res := r.Wait(); !slices.Equal(res.CheckIns, []string{"a", "b", "c"}) {
			t.Errorf("CheckIns = %q", res.CheckIns)
		}
	})

	t.Run("CheckinJustBeforeTheEnd", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error { return ctx.Checkin("last") }), nil)
		r.Wait()
		if err := r.WaitCheckin(waitCtx(t), "last"); err != nil {
			t.Errorf("WaitCheckin after the end = %v, want nil", err)
		}
	})

	t.Run("JobEndsWithoutIt", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(t, jobOf(func(ctx sdk.Context, _ sdk.Parameters) error { return ctx.Checkin("other") }), nil)
		err := r.WaitCheckin(waitCtx(t), "never")
		if err == nil || err.Error() != `sdktest: the job ended without checking in "never"` {
			t.Errorf("WaitCheckin = %v, want an ended-without error", err)
		}
	})

	t.Run("ContextEnds", func(t *testing.T) {
		t.Parallel()
		r := sdktest.Start(t, untilDone, nil)
		defer r.Wait()
		defer r.Stop()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.WaitCheckin(ctx, "never"); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitCheckin = %v, want it to wrap %v", err, context.Canceled)
		}
	})
}

// WaitCheckin waits until the job has checked in with message: a check-in
// that an earlier WaitCheckin went past still counts.
func TestWaitCheckinSeesEarlierCheckins(t *testing.T) {
	t.Parallel()
	r := sdktest.Start(t, untilDone, nil)
	defer r.Wait()
	defer r.Stop()
	ctx := waitCtx(t)
	if err := r.WaitCheckin(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := r.WaitCheckin(short, "ready"); err != nil {
		t.Errorf("the second WaitCheckin of a past check-in = %v, want nil", err)
	}
}

// What sdktest cannot do fails the test, with a message that says why.
func TestSetupFailures(t *testing.T) {
	t.Parallel()
	ok := jobOf(func(sdk.Context, sdk.Parameters) error { return nil })
	tests := []struct {
		name string
		body func(tb testing.TB)
		want string
	}{
		{"ZeroJob", func(tb testing.TB) { sdktest.Run(tb, sdk.Job{}, nil) },
			`sdktest: the job cannot be served: sdk.Serve: job "JOB" is the zero sdk.Job: make it with sdk.Typed`},
		{"ParametersNotJSON", func(tb testing.TB) { sdktest.Run(tb, ok, map[string]any{"c": make(chan int)}) },
			"sdktest: parameters cannot travel as JSON: json: unsupported type: chan int"},
		{"ValidateParametersNotJSON", func(tb testing.TB) { _ = sdktest.Validate(tb, ok, map[string]any{"f": func() {}}) },
			"sdktest: parameters cannot travel as JSON: json: unsupported type: func()"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := failures(t, tc.body); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("failures = %q, want %q", got, tc.want)
			}
		})
	}
}

// sdktest.WithConfig reaches the configuration handler the plugin's main
// passes to Serve (given with WithPlugin), which may refuse it; given to a
// plugin that takes no configuration, it fails the setup.
func TestWithConfigReachesThePlugin(t *testing.T) {
	t.Parallel()
	type settings struct {
		Token string `json:"token"`
	}
	var got atomic.Value
	plugin := sdktest.WithPlugin(sdk.WithConfig(func(s settings) error {
		if s.Token == "" {
			return errors.New(`setting "token" must not be empty`)
		}
		got.Store(s.Token)
		return nil
	}))
	ok := jobOf(func(sdk.Context, sdk.Parameters) error { return nil })
	if res := sdktest.Run(t, ok, nil, plugin, sdktest.WithConfig(settings{Token: "secret"})); res.Kind != sdktest.Succeeded || got.Load() != "secret" {
		t.Errorf("run with a configuration: %s %v, the plugin took %v", res.Kind, res.Err, got.Load())
	}
	tests := []struct {
		name string
		body func(tb testing.TB)
		want string
	}{
		{"Refused", func(tb testing.TB) { sdktest.Run(tb, ok, nil, plugin, sdktest.WithConfig(settings{})) },
			`sdktest: the plugin refused its configuration: setting "token" must not be empty`},
		{"Unknown", func(tb testing.TB) { sdktest.Run(tb, ok, nil, plugin, sdktest.WithConfig(map[string]any{"tokn": "x"})) },
			`sdktest: the plugin refused its configuration: unknown setting "tokn"`},
		{"NoHandler", func(tb testing.TB) { sdktest.Run(tb, ok, nil, sdktest.WithConfig(settings{Token: "secret"})) },
			"sdktest: WithConfig, but the plugin takes no configuration: pass the sdk.WithConfig of its main with WithPlugin"},
		{"NotJSON", func(tb testing.TB) { sdktest.Run(tb, ok, nil, plugin, sdktest.WithConfig(func() {})) },
			"sdktest: WithConfig: the configuration cannot travel as JSON: json: unsupported type: func()"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := failures(t, tc.body); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("failures = %q, want %q", got, tc.want)
			}
		})
	}
}

// What sdk.WithConfig does with a section, as Configure hands it over:
// decoded strictly into C, then apply's verdict.
func TestWithConfigDecodesStrictly(t *testing.T) {
	t.Parallel()
	type settings struct {
		Token   string `json:"token"`
		Retries int    `json:"retries,omitempty" jsonschema:"minimum=0"`
	}
	var o core.ServeOptions
	var got settings
	opt := sdk.WithConfig(func(s settings) error {
		got = s
		if s.Token == "" {
			return errors.New(`setting "token" must not be empty`)
		}
		return nil
	})
	if err := opt(&o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(o.Config.Schema), `"token"`) {
		t.Errorf("schema = %s", o.Config.Schema)
	}
	tests := []struct {
		name, section, want string
	}{
		{"Taken", `{"token":"t","retries":2}`, ""},
		{"Refused", `{}`, `setting "token" must not be empty`},
		{"Unknown", `{"token":"t","tokn":"t"}`, `unknown setting "tokn"`},
		{"WrongType", `{"token":"t","retries":"2"}`, `setting "retries" must be a whole number, got string`},
		{"NotAnObject", `[]`, "the configuration is not a JSON object of the expected shape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: got is shared.
			err := o.Config.Apply([]byte(tc.section))
			if tc.want == "" {
				if err != nil || got != (settings{Token: "t", Retries: 2}) {
					t.Errorf("Apply = %v, decoded %+v", err, got)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Apply = %v, want %q", err, tc.want)
			}
		})
	}
}

// Every run ends with nothing left running: no gRPC connection, no
// goroutine watching the process.
func TestNothingLeaks(t *testing.T) {
	// Not parallel: the goroutines of paused parallel tests are the ones
	// running now, so IgnoreCurrent ignores them.
	ignore := goleak.IgnoreCurrent()
	t.Run("Run", func(t *testing.T) {
		sdktest.Run(t, jobOf(func(sdk.Context, sdk.Parameters) error { return nil }), nil)
	})
	goleak.VerifyNone(t, ignore)
}

// A pointer to a struct decodes as strictly as the struct: an unknown
// parameter fails the run, as the schema (generated from the struct)
// refuses it in Validate.
func TestPointerParametersDecodeStrictly(t *testing.T) {
	t.Parallel()
	job := sdk.Typed[*copyParams](fn[*copyParams]{run: func(sdk.Context, *copyParams) error { return nil }})
	params := map[string]any{"image": "demo", "tag": 1}
	if err := sdktest.Validate(t, job, params); err == nil || err.Error() != `unknown parameter "tag" (known: image, tags)` {
		t.Fatalf("Validate = %v", err)
	}
	if res := sdktest.Run(t, job, params); res.Kind != sdktest.FailedPermanently {
		t.Errorf("Run with an unknown parameter: %s %v, want a permanent failure", res.Kind, res.Err)
	}
}

// Typed of parameters that JSON cannot carry (a channel field) does not
// panic: the job cannot be served, and the error names the field.
func TestTypedOfParametersJSONCannotCarry(t *testing.T) {
	t.Parallel()
	type inner struct {
		F func() `json:"f"`
	}
	type bad struct {
		Image string   `json:"image"`
		C     chan int `json:"c"`
	}
	type nested struct {
		In []inner `json:"in"`
	}
	tests := []struct {
		name string
		job  func() sdk.Job
		want string
	}{
		{"Chan", func() sdk.Job { return sdk.Typed[bad](fn[bad]{}) }, "field C cannot travel as JSON"},
		{"NestedFunc", func() sdk.Job { return sdk.Typed[*nested](fn[*nested]{}) }, "field In.F cannot travel as JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := failures(t, func(tb testing.TB) { sdktest.Run(tb, tc.job(), nil) })
			if len(got) != 1 || !strings.HasPrefix(got[0], `sdktest: the job cannot be served: sdk.Serve: job "JOB": its parameters: schema: of`) || !strings.HasSuffix(got[0], tc.want) {
				t.Errorf("failures = %q, want one ending %q", got, tc.want)
			}
		})
	}
}

// everything declares every optional interface.
type everything struct{ sdk.Defaults }

func (everything) MaxFails() uint                    { return 7 }
func (everything) ShouldRetry() bool                 { return false }
func (everything) MaxConcurrency() uint              { return 2 }
func (everything) Version() string                   { return "1.2.3" }
func (everything) MaxSnoozes() uint                  { return 30 }
func (everything) Validate(copyParams) error         { return nil }
func (everything) Run(sdk.Context, copyParams) error { return nil }

var (
	_ sdk.Retries               = everything{}
	_ sdk.Concurrency           = everything{}
	_ sdk.Versioned             = everything{}
	_ sdk.Snoozer               = everything{}
	_ sdk.Validator[copyParams] = everything{}
)

// bare implements Run only.
type bare struct{}

func (bare) Run(sdk.Context, sdk.Parameters) error { return nil }

// Typed declares to the host what the job type says of itself (what
// Describe sends); a job without Retries gets the defaults.
func TestTypedDeclaresTheJobType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		job       sdk.Job
		want      core.Spec // without the functions and the schema
		hasSchema bool
	}{
		{"Everything", sdk.Typed[copyParams](everything{}),
			core.Spec{MaxFails: 7, MaxConcurrency: 2, Version: "1.2.3", MaxSnoozes: 30, Validates: true}, true},
		{"Defaults", sdk.Typed[copyParams](fn[copyParams]{}), core.Spec{ShouldRetry: true}, true},
		{"NoRetries", sdk.Typed[sdk.Parameters](bare{}), core.Spec{ShouldRetry: true}, false},
		{"ParametersWithValidator", sdk.Typed[sdk.Parameters](checked[sdk.Parameters]{}), core.Spec{ShouldRetry: true, Validates: true}, false},
		// Only Validate can tell whether parameters decode into a list.
		{"NeitherStructNorMap", sdk.Typed[[]int](fn[[]int]{}), core.Spec{ShouldRetry: true, Validates: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := core.SpecOf(tc.job)
			if sp == nil || sp.Run == nil || sp.Validate == nil {
				t.Fatalf("spec = %+v", sp)
			}
			got := core.Spec{MaxFails: sp.MaxFails, ShouldRetry: sp.ShouldRetry, MaxConcurrency: sp.MaxConcurrency,
				Version: sp.Version, MaxSnoozes: sp.MaxSnoozes, Validates: sp.Validates}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("spec = %+v\nwant   %+v", got, tc.want)
			}
			if has := sp.ParamsSchema != nil; has != tc.hasSchema {
				t.Errorf("schema %s, want one: %v", sp.ParamsSchema, tc.hasSchema)
			}
		})
	}
}

// Parameters the host sends empty are the empty object.
func TestTypedTakesEmptyParametersAsTheEmptyObject(t *testing.T) {
	t.Parallel()
	type optional struct {
		N int `json:"n,omitempty"`
	}
	sp := core.SpecOf(sdk.Typed[optional](fn[optional]{}))
	for _, raw := range []string{"", " \n", "{}"} {
		if err := sp.Validate([]byte(raw)); err != nil {
			t.Errorf("Validate(%q) = %v", raw, err)
		}
	}
}
