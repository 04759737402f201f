package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		params  sdk.Parameters
		wantErr string // substring; "" means valid
	}{
		{"Minimal", sdk.Parameters{"image": "demo"}, ""},
		{"AllSet", sdk.Parameters{"image": "demo/x", "hold_seconds": 0.5, "fail": true, "crash": false, "log_lines": 10}, ""},
		{"HoldBounds", sdk.Parameters{"image": "demo", "hold_seconds": 3600}, ""},
		{"NoParams", nil, `"image" is required`},
		{"MissingImage", sdk.Parameters{"hold_seconds": 1}, `"image" is required`},
		{"ImageNotString", sdk.Parameters{"image": 42}, `"image" must be a string`},
		{"ImageNull", sdk.Parameters{"image": nil}, `"image" must be a string`},
		{"WrongPrefix", sdk.Parameters{"image": "library/busybox"}, `must start with "demo", got "library/busybox"`},
		{"HoldNegative", sdk.Parameters{"image": "demo", "hold_seconds": -1}, `"hold_seconds" must be a number from 0 to 3600, got -1`},
		{"HoldTooLong", sdk.Parameters{"image": "demo", "hold_seconds": 3601}, `"hold_seconds" must be a number from 0 to 3600`},
		{"HoldString", sdk.Parameters{"image": "demo", "hold_seconds": "10"}, `"hold_seconds" must be a number`},
		{"FailNotBool", sdk.Parameters{"image": "demo", "fail": "yes"}, `"fail" must be true or false`},
		{"CrashNotBool", sdk.Parameters{"image": "demo", "crash": 1}, `"crash" must be true or false`},
		{"LogLinesFraction", sdk.Parameters{"image": "demo", "log_lines": 1.5}, `"log_lines" must be a whole number`},
		{"LogLinesTooMany", sdk.Parameters{"image": "demo", "log_lines": 100001}, `"log_lines" must be a whole number from 0 to 100000`},
		{"Unknown", sdk.Parameters{"image": "demo", "hold": 1}, `unknown parameter "hold"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sdktest.Validate(Job{}, tc.params)
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
	res := sdktest.Run(Job{}, sdk.Parameters{"image": "demo", "hold_seconds": 0, "log_lines": 3})
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	if got, want := strings.Join(res.CheckIns, "|"), "progress data: %30|progress data: %60"; got != want {
		t.Fatalf("check-ins = %q, want %q", got, want)
	}
	var lines []string
	for _, l := range res.Logs {
		lines = append(lines, l.Message)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"log line 1 of 3", "log line 3 of 3", "DEMO job done"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
}

func TestRunFails(t *testing.T) {
	t.Parallel()
	res := sdktest.Run(Job{}, sdk.Parameters{"image": "demo", "fail": true})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "failed as asked") {
		t.Fatalf("Run error = %v, want the fail error", res.Err)
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
			r := sdktest.Start(Job{}, sdk.Parameters{"image": "demo", "hold_seconds": 3600})
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
			last := res.Logs[len(res.Logs)-1].Message
			if last != "received op command: "+string(tc.want) {
				t.Fatalf("last log line = %q", last)
			}
		})
	}
}

func TestRunEndsOnShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := sdktest.Start(Job{}, sdk.Parameters{"image": "demo", "hold_seconds": 3600}, sdktest.WithContext(ctx))
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := r.WaitCheckin(wctx, "progress data: %60"); err != nil {
		t.Fatal(err)
	}
	cancel()
	res := r.Wait()
	if res.Err == nil {
		t.Fatal("Run returned nil after its context was cancelled")
	}
}
