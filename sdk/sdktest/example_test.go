package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// Mirror is the job type of these examples: it checks in, then holds
// until its context ends.
type Mirror struct{ sdk.Defaults }

// MirrorParams are its parameters.
type MirrorParams struct {
	Image string `json:"image"`
}

func (Mirror) Run(ctx sdk.Context, p MirrorParams) error {
	ctx.Logger().Info("mirroring", "image", p.Image)
	if err := ctx.Checkin("mirroring " + p.Image); err != nil {
		return err
	}
	<-ctx.Done()
	if cmd, ok := ctx.OPCommand(); ok {
		return fmt.Errorf("asked to %s", cmd)
	}
	return context.Cause(ctx)
}

// Run runs a job to its end and reports what the host would have seen.
func ExampleRun() {
	asTest(func(t testing.TB) {
		res := sdktest.Run(t, sdk.Typed[MirrorParams](Mirror{}), map[string]any{"image": "library/redis"},
			sdktest.WithTimeout(10*time.Millisecond))
		fmt.Println(res.Kind, res.Err)
		fmt.Println(res.CheckIns, res.Logs)
	})
	// Output:
	// error the job ran past its deadline (job_timeout)
	// [mirroring library/redis] [{INFO mirroring image=library/redis}]
}

// Start runs a job in the background, to stop or cancel it once it has
// checked in.
func ExampleStart() {
	asTest(func(t testing.TB) {
		r := sdktest.Start(t, sdk.Typed[MirrorParams](Mirror{}), map[string]any{"image": "library/redis"})
		if err := r.WaitCheckin(t.Context(), "mirroring library/redis"); err != nil {
			t.Fatal(err)
		}
		r.Stop()
		res := r.Wait()
		fmt.Println(res.Kind, res.Err)
	})
	// Output: error asked to stop
}

// Validate checks parameters as the host does before it accepts a
// submission.
func ExampleValidate() {
	asTest(func(t testing.TB) {
		job := sdk.Typed[MirrorParams](Mirror{})
		fmt.Println(sdktest.Validate(t, job, map[string]any{"image": "library/redis"}))
		fmt.Println(sdktest.Validate(t, job, map[string]any{"image": 7}))
		fmt.Println(sdktest.Validate(t, job, nil))
	})
	// Output:
	// <nil>
	// parameter "image" must be a string, got 7
	// parameter "image" is required
}

// Outcomes other than success have a Kind of their own.
func ExampleKind() {
	asTest(func(t testing.TB) {
		for _, err := range []error{
			nil,
			errors.New("registry unreachable"),
			sdk.Permanent(errors.New("wrong password")),
			sdk.Snooze(time.Minute, "rate limited"),
		} {
			job := sdk.Typed[sdk.Parameters](returns{err})
			fmt.Println(sdktest.Run(t, job, nil).Kind)
		}
	})
	// Output:
	// success
	// error
	// permanent_error
	// snooze
}

// WithPlugin serves the job with the options of the plugin's main, so that
// WithConfig reaches the plugin's configuration handler as the host's
// plugin_config section does.
func ExampleWithPlugin() {
	type settings struct {
		Registry string `json:"registry"`
	}
	var registry string
	config := sdk.WithConfig(func(s settings) error {
		if s.Registry == "" {
			return errors.New(`setting "registry" is required`)
		}
		registry = s.Registry
		return nil
	})
	asTest(func(t testing.TB) {
		job := sdk.Typed[sdk.Parameters](returns{nil})
		res := sdktest.Run(t, job, nil, sdktest.WithPlugin(config), sdktest.WithConfig(settings{Registry: "https://registry.example"}))
		fmt.Println(res.Kind, registry)
		sdktest.Run(t, job, nil, sdktest.WithPlugin(config), sdktest.WithConfig(settings{}))
	})
	// Output:
	// success https://registry.example
	// FAIL: sdktest: the plugin refused its configuration: setting "registry" is required
}

// returns is a job that returns err.
type returns struct{ err error }

func (r returns) Run(sdk.Context, sdk.Parameters) error { return r.err }

// asTest runs body as the body of a test function, so that the examples
// show sdktest as a plugin's test calls it, with its t: a testing.TB
// whose failures are printed (and so break the example's output) and
// whose cleanups run when body returns.
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
