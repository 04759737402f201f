package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

var demo = sdk.Typed[Params](Job{})

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		params  map[string]any
		wantErr string // substring; "" means valid
	}{
		{"Minimal", map[string]any{"image": "demo"}, ""},
		{"AllSet", map[string]any{"image": "demo/x", "hold_seconds": 0.5, "fail": true, "crash": false, "log_lines": 10}, ""},
		{"HoldBounds", map[string]any{"image": "demo", "hold_seconds": 3600}, ""},
		{"NoParams", nil, `parameter "image" is required`},
		{"MissingImage", map[string]any{"hold_seconds": 1}, `parameter "image" is required`},
		{"ImageNotString", map[string]any{"image": 42}, `parameter "image" must be a string, got 42`},
		{"ImageNull", map[string]any{"image": nil}, `parameter "image" must be a string, got null`},
		{"WrongPrefix", map[string]any{"image": "library/busybox"}, `parameter "image" must start with "demo", got "library/busybox"`},
		{"HoldNegative", map[string]any{"image": "demo", "hold_seconds": -1}, `parameter "hold_seconds" must be a number from 0 to 3600, got -1`},
		{"HoldTooLong", map[string]any{"image": "demo", "hold_seconds": 3601}, `"hold_seconds" must be a number from 0 to 3600`},
		{"HoldString", map[string]any{"image": "demo", "hold_seconds": "10"}, `"hold_seconds" must be a number, got "10"`},
		{"FailNotBool", map[string]any{"image": "demo", "fail": "yes"}, `"fail" must be true or false`},
		{"CrashNotBool", map[string]any{"image": "demo", "crash": 1}, `"crash" must be true or false`},
		{"LogLinesFraction", map[string]any{"image": "demo", "log_lines": 1.5}, `"log_lines" must be a whole number`},
		{"LogLinesTooMany", map[string]any{"image": "demo", "log_lines": 100001}, `"log_lines" must be a whole number from 0 to 100000`},
		{"Unknown", map[string]any{"image": "demo", "hold": 1}, `unknown parameter "hold"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sdktest.Validate(t, demo, tc.params)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tc.params, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate(%v) = %v, want an error containing %q", tc.params, err, tc.wantErr)
			}
		})
	}
}

func TestRunSucceedsAfterCheckIns(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(t, demo, map[string]any{"image": "demo", "hold_seconds": 0, "log_lines": 3})
	if res.Kind != sdktest.Succeeded || res.Err != nil {
		t.Fatalf("Run: %s %v", res.Kind, res.Err)
	}
	if got, want := strings.Join(res.CheckIns, "|"), "progress data: %30|progress data: %60"; got != want {
		t.Fatalf("check-ins = %q, want %q", got, want)
	}
	var lines []string
	for _, l := range res.Logs {
		lines = append(lines, l.Level+" "+l.Message)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"INFO DEMO job started job_id=000000000000000000000001 image=demo", "INFO log line 1 of 3", "INFO log line 3 of 3", "INFO holding seconds=0", "INFO DEMO job done"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
}

func TestRunFails(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(t, demo, map[string]any{"image": "demo", "fail": true})
	if res.Kind != sdktest.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), "failed as asked") {
		t.Fatalf("Run = %s %v, want the fail error", res.Kind, res.Err)
	}
	if len(res.CheckIns) != 2 {
		t.Fatalf("check-ins = %q, want both before the failure", res.CheckIns)
	}
}

func TestRunEndsAtOnceOnStopAndCancel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		op   func(*sdktest.Running)
		want sdk.OPCommand
	}{
		{"Stop", (*sdktest.Running).Stop, sdk.OPStop},
		{"Cancel", (*sdktest.Running).Cancel, sdk.OPCancel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sdktest.Start(t, demo, map[string]any{"image": "demo", "hold_seconds": 3600})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.WaitCheckin(ctx, "progress data: %60"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			tc.op(r)
			res := r.Wait()
			if waited := time.Since(start); waited > 5*time.Second {
				t.Fatalf("the job took %v to end after %s", waited, tc.name)
			}
			if res.Err == nil || !strings.Contains(res.Err.Error(), "DEMO "+string(tc.want)) {
				t.Fatalf("Run error = %v, want one naming %q", res.Err, tc.want)
			}
			last := res.Logs[len(res.Logs)-1]
			if last.Level != "WARNING" || last.Message != "received op command: "+string(tc.want) {
				t.Fatalf("last log line = %+v", last)
			}
		})
	}
}

func TestRunEndsOnShutdown(t *testing.T) {
	t.Parallel()
	r := sdktest.Start(t, demo, map[string]any{"image": "demo", "hold_seconds": 3600})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitCheckin(ctx, "progress data: %60"); err != nil {
		t.Fatal(err)
	}
	r.Shutdown()
	res := r.Wait()
	if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "shutting down") {
		t.Fatalf("Run after a shutdown = %s %v", res.Kind, res.Err)
	}
}
