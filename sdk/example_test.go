package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// CopyParams are the parameters of the COPY job type. JSON tags name them,
// omitempty makes one optional, jsonschema tags bound it: the host checks
// every submission against the JSON Schema generated from this struct.
type CopyParams struct {
	Image string `json:"image"`
	Tags  int    `json:"tags,omitempty" jsonschema:"minimum=1,maximum=10"`
}

// Copy copies an image's tags. Run is the one method a job type must have;
// the embedded Defaults gives it the host's retry rules.
type Copy struct{ sdk.Defaults }

// Assert the optional interfaces at compile time: a misspelled method is
// then an error, not a silent default.
var (
	_ sdk.Runner[CopyParams]    = Copy{}
	_ sdk.Validator[CopyParams] = Copy{}
	_ sdk.Concurrency           = Copy{}
	_ sdk.Versioned             = Copy{}
)

// Validate checks what the schema cannot.
func (Copy) Validate(p CopyParams) error {
	if !strings.Contains(p.Image, "/") {
		return fmt.Errorf(`parameter "image" must be "<project>/<repository>", got %q`, p.Image)
	}
	return nil
}

// MaxConcurrency allows two COPY runs at once, across every host.
func (Copy) MaxConcurrency() uint { return 2 }

// Version is shown in the host's log and listings.
func (Copy) Version() string { return "1.0.0" }

func (Copy) Run(ctx sdk.Context, p CopyParams) error {
	tags := max(p.Tags, 1)
	for i := 1; i <= tags; i++ {
		ctx.Logger().Info("copying", "image", p.Image, "tag", i)
		if err := ctx.Checkin(fmt.Sprintf("copied %d of %d", i, tags)); err != nil {
			return err
		}
	}
	return ctx.SetOutput(map[string]int{"copied": tags})
}

// A job type is a value with a Run method; sdk.Typed makes it a job to
// serve, and sdktest runs it in a test as the host would.
func Example() {
	asTest(func(t testing.TB) {
		res := sdktest.Run(t, sdk.Typed[CopyParams](Copy{}), map[string]any{"image": "library/redis", "tags": 2})
		fmt.Println(res.Kind, res.CheckIns, string(res.Output))
		for _, l := range res.Logs {
			fmt.Println(l.Level, l.Message)
		}
	})
	// Output:
	// success [copied 1 of 2 copied 2 of 2] {"copied":2}
	// INFO copying image=library/redis tag=1
	// INFO copying image=library/redis tag=2
}

// A plugin's main is one call. Build the program and put the binary into
// the host's plugins directory.
func ExampleServe() {
	if err := sdk.Serve(sdk.Jobs{
		"COPY":   sdk.Typed[CopyParams](Copy{}),
		"REPORT": sdk.Typed[sdk.Parameters](Report{}),
	}); err != nil {
		log.Fatal(err)
	}
}

// Settings are the plugin's section of the host configuration
// (plugin_config.<plugin file name> in the host's YAML).
type Settings struct {
	Registry string `json:"registry"`
	Token    string `json:"token"`
}

// WithConfig takes the plugin's configuration before any job runs; a
// refusal (or an unknown setting) keeps the host from starting.
func ExampleWithConfig() {
	var settings Settings
	push := Func(func(ctx sdk.Context, _ sdk.Parameters) error {
		ctx.Logger().Info("pushing", "registry", settings.Registry)
		return nil
	})
	err := sdk.Serve(sdk.Jobs{"PUSH": sdk.Typed[sdk.Parameters](push)},
		sdk.WithConfig(func(s Settings) error {
			if !strings.HasPrefix(s.Registry, "https://") {
				return fmt.Errorf(`setting "registry" must be an https URL, got %q`, s.Registry)
			}
			settings = s
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
}

// Typed decodes the parameters into P strictly: a parameter P does not
// have fails the run for good. (The host refuses such a submission first,
// with the same words.)
func ExampleTyped() {
	asTest(func(t testing.TB) {
		res := sdktest.Run(t, sdk.Typed[CopyParams](Copy{}), map[string]any{"image": "library/redis", "tag": 2})
		fmt.Println(res.Kind, res.Err)
	})
	// Output: permanent_error the parameters do not decode: unknown parameter "tag"
}

// The host checks a submission against the schema of P, then calls the
// job's Validate; either answers a bad one with a 400 and these words.
func ExampleValidator() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[CopyParams](Copy{})
		for _, params := range []map[string]any{
			{"image": "library/redis"},
			{"tags": 2},
			{"image": "library/redis", "tags": 11},
			{"image": "redis"},
		} {
			fmt.Println(sdktest.Validate(t, job, params))
		}
	})
	// Output:
	// <nil>
	// parameter "image" is required
	// parameter "tags" must be a whole number from 1 to 10, got 11
	// parameter "image" must be "<project>/<repository>", got "redis"
}

// Embedded Defaults, a job type has the host's retry rules: MaxFails 0
// (the host default, four failed runs) and retried.
func ExampleDefaults() {
	var r sdk.Retries = Copy{}
	fmt.Println(r.MaxFails(), r.ShouldRetry())
	// Output: 0 true
}

// Once is never retried: it defines ShouldRetry over its Defaults.
type Once struct{ sdk.Defaults }

func (Once) ShouldRetry() bool { return false }

func (Once) Run(sdk.Context, sdk.Parameters) error { return nil }

func ExampleRetries() {
	var r sdk.Retries = Once{}
	fmt.Println(r.MaxFails(), r.ShouldRetry())
	// Output: 0 false
}

func ExampleConcurrency() {
	var c sdk.Concurrency = Copy{}
	fmt.Println(c.MaxConcurrency())
	// Output: 2
}

func ExampleVersioned() {
	var v sdk.Versioned = Copy{}
	fmt.Println(v.Version())
	// Output: 1.0.0
}

// Report waits for a report to be ready.
type Report struct{ sdk.Defaults }

var _ sdk.Snoozer = Report{}

// MaxSnoozes lets one run snooze up to 30 times (the host default is 100).
func (Report) MaxSnoozes() uint { return 30 }

func (Report) Run(ctx sdk.Context, _ sdk.Parameters) error {
	if ready, _ := ctx.Property("report_ready"); ready != "true" {
		return sdk.Snooze(time.Minute, "the report is not ready")
	}
	return nil
}

// A snoozed run runs again later, without counting a failure.
func ExampleSnooze() {
	asTest(func(t testing.TB) {
		res := sdktest.Run(t, sdk.Typed[sdk.Parameters](Report{}), nil)
		fmt.Println(res.Kind, res.SnoozeFor, res.Err)
	})
	// Output: snooze 1m0s snoozed for 1m0s: the report is not ready
}

func ExampleSnoozer() {
	var s sdk.Snoozer = Report{}
	fmt.Println(s.MaxSnoozes())
	// Output: 30
}

// Login fails for good on a wrong password; any other error is retried.
type Login struct{ sdk.Defaults }

func (Login) Run(_ sdk.Context, p sdk.Parameters) error {
	if p["password"] != "hunter2" {
		return sdk.Permanent(errors.New("wrong password"))
	}
	return errors.New("registry unreachable")
}

func ExamplePermanent() {
	asTest(func(t testing.TB) {
		for _, password := range []string{"guess", "hunter2"} {
			res := sdktest.Run(t, sdk.Typed[sdk.Parameters](Login{}), sdk.Parameters{"password": password})
			fmt.Println(res.Kind, res.Err)
		}
	})
	// Output:
	// permanent_error wrong password
	// error registry unreachable
}

// Func adapts a function to a job type, for the examples below.
type Func func(ctx sdk.Context, p sdk.Parameters) error

func (f Func) Run(ctx sdk.Context, p sdk.Parameters) error { return f(ctx, p) }

// A job that takes Parameters gets the JSON object undecoded, with no
// schema: numbers are float64.
func ExampleParameters() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](Func(func(ctx sdk.Context, p sdk.Parameters) error {
			return ctx.SetOutput(fmt.Sprintf("%T %v", p["n"], p["n"]))
		}))
		fmt.Println(string(sdktest.Run(t, job, sdk.Parameters{"n": 3}).Output))
	})
	// Output: "float64 3"
}

// The job's log takes levels and key=value attributes.
func ExampleContext_Logger() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](Func(func(ctx sdk.Context, _ sdk.Parameters) error {
			log := ctx.Logger().With("repo", "library/redis")
			log.Debug("resolving")
			log.WithGroup("http").Warn("slow answer", "path", "/v2/tags", "took", 1500*time.Millisecond)
			log.Error("giving up", "reason", "no tags found")
			return nil
		}))
		for _, l := range sdktest.Run(t, job, nil).Logs {
			fmt.Println(l.Level, l.Message)
		}
	})
	// Output:
	// DEBUG resolving repo=library/redis
	// WARNING slow answer repo=library/redis http.path=/v2/tags http.took=1.5s
	// ERROR giving up repo=library/redis reason="no tags found"
}

// A run knows its job's ID, its attempt and its properties.
func ExampleContext_Property() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](Func(func(ctx sdk.Context, _ sdk.Parameters) error {
			name, _ := ctx.Property("job_name")
			region, _ := ctx.Property("region")
			return ctx.SetOutput(fmt.Sprintf("%s %s attempt %d in %s", name, ctx.JobID(), ctx.Attempt(), region))
		}))
		res := sdktest.Run(t, job, nil, sdktest.WithJobID("nightly@1700000000"), sdktest.WithAttempt(2),
			sdktest.WithProperties(map[string]string{"region": "eu-west"}))
		fmt.Println(string(res.Output))
	})
	// Output: "JOB nightly@1700000000 attempt 2 in eu-west"
}

// What a successful run produced is kept with its stats: JSON, at most
// 1 MiB.
func ExampleContext_SetOutput() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](Func(func(ctx sdk.Context, _ sdk.Parameters) error {
			if err := ctx.SetOutput(strings.Repeat("x", 2<<20)); err != nil {
				ctx.Logger().Warn(err.Error())
			}
			return ctx.SetOutput(map[string]any{"digest": "sha256:4f2a", "size": 1024})
		}))
		res := sdktest.Run(t, job, nil)
		fmt.Println(res.Logs[0].Message)
		fmt.Println(string(res.Output))
	})
	// Output:
	// sdk: the output is 2097154 bytes of JSON, more than the 1048576 allowed
	// {"digest":"sha256:4f2a","size":1024}
}

// A sub-job is tracked as an execution of the job that launched it.
func ExampleContext_LaunchJob() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](Func(func(ctx sdk.Context, _ sdk.Parameters) error {
			id, err := ctx.LaunchJob(sdk.JobRequest{Name: "COPY", Parameters: sdk.Parameters{"image": "library/redis"}, ScheduleDelay: 60})
			if err != nil {
				return err
			}
			ctx.Logger().Info("launched", "id", id)
			return nil
		}))
		res := sdktest.Run(t, job, nil)
		fmt.Println(string(res.Launched[0]))
		fmt.Println(res.Logs[0].Message)
	})
	// Output:
	// {"name":"COPY","parameters":{"image":"library/redis"},"metadata":{"kind":"Scheduled","schedule_delay":60,"unique":false}}
	// launched id=000000000000000000000001
}

// Hold holds until its context ends, and says why it ended.
type Hold struct{ sdk.Defaults }

func (Hold) Run(ctx sdk.Context, _ sdk.Parameters) error {
	if err := ctx.Checkin("holding"); err != nil {
		return err
	}
	<-ctx.Done()
	switch cmd, _ := ctx.OPCommand(); cmd {
	case sdk.OPStop:
		return errors.New("stopped; keeping what was copied")
	case sdk.OPCancel:
		return errors.New("cancelled; removing what was copied")
	}
	return context.Cause(ctx) // the deadline, or the host's shutdown
}

// A job's context ends when it is stopped or cancelled, passes its
// deadline, or the host shuts down; OPCommand and context.Cause say which.
func ExampleContext_OPCommand() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](Hold{})
		for _, end := range []func(*sdktest.Running){(*sdktest.Running).Stop, (*sdktest.Running).Cancel, (*sdktest.Running).Shutdown} {
			r := sdktest.Start(t, job, nil)
			if err := r.WaitCheckin(t.Context(), "holding"); err != nil {
				t.Fatal(err)
			}
			end(r)
			fmt.Println(r.Wait().Err)
		}
		fmt.Println(sdktest.Run(t, job, nil, sdktest.WithTimeout(10*time.Millisecond)).Err)
	})
	// Output:
	// stopped; keeping what was copied
	// cancelled; removing what was copied
	// the host is shutting down; the job will run again on another host
	// the job ran past its deadline (job_timeout)
}

// asTest runs body as the body of a test function, so that the examples
// show sdktest exactly as a plugin's test calls it, with its t: a
// testing.TB whose failures are printed (and so break the example's
// output) and whose cleanups run when body returns.
func asTest(body func(t testing.TB)) {
	t := &exampleT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(t)
	}()
	<-done
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// exampleT is the testing.TB of asTest: the methods sdktest and these
// examples call.
type exampleT struct {
	testing.TB // nil: a method sdktest starts to use panics, visibly

	mu       sync.Mutex
	cleanups []func()
}

// Context ends a minute after it is asked for, or when the body ends.
func (t *exampleT) Context() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (*exampleT) Helper() {}

func (t *exampleT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (*exampleT) Errorf(format string, args ...any) { fmt.Printf("FAIL: "+format+"\n", args...) }

func (t *exampleT) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *exampleT) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

func (t *exampleT) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
