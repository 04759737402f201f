package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/sdk"
)

// Job is the DEMO job.
type Job struct{}

// Bounds of the parameters.
const (
	maxHoldSeconds     = 3600
	defaultHoldSeconds = 30
	maxLogLines        = 100000
)

// Check-in messages, in order.
var checkIns = []string{"progress data: %30", "progress data: %60"}

// MaxFails allows three failed runs.
func (Job) MaxFails() uint { return 3 }

// ShouldRetry retries failed runs.
func (Job) ShouldRetry() bool { return true }

// Version of the DEMO job.
func (Job) Version() string { return "1.0.0" }

// params are the DEMO job's parameters after validation.
type params struct {
	image    string
	hold     time.Duration
	fail     bool
	crash    bool
	logLines int
}

var known = []string{"image", "hold_seconds", "fail", "crash", "log_lines"}

// Validate checks the parameters; see the package documentation.
func (Job) Validate(p sdk.Parameters) error {
	_, err := parse(p)
	return err
}

func parse(p sdk.Parameters) (params, error) {
	out := params{hold: defaultHoldSeconds * time.Second}
	for k := range p {
		if !isKnown(k) {
			return out, fmt.Errorf("unknown parameter %q: DEMO takes %s", k, strings.Join(known, ", "))
		}
	}
	raw, ok := p["image"]
	if !ok {
		return out, errors.New(`parameter "image" is required: a string starting with "demo"`)
	}
	image, ok := raw.(string)
	if !ok {
		return out, fmt.Errorf(`parameter "image" must be a string starting with "demo", got %s`, describe(raw))
	}
	if !strings.HasPrefix(image, "demo") {
		return out, fmt.Errorf(`parameter "image" must start with "demo", got %q`, image)
	}
	out.image = image
	if raw, ok := p["hold_seconds"]; ok {
		n, ok := raw.(float64)
		if !ok || math.IsNaN(n) || n < 0 || n > maxHoldSeconds {
			return out, fmt.Errorf(`parameter "hold_seconds" must be a number from 0 to %d, got %s`, maxHoldSeconds, describe(raw))
		}
		out.hold = time.Duration(n * float64(time.Second))
	}
	for _, name := range []string{"fail", "crash"} {
		raw, ok := p[name]
		if !ok {
			continue
		}
		b, ok := raw.(bool)
		if !ok {
			return out, fmt.Errorf("parameter %q must be true or false, got %s", name, describe(raw))
		}
		if name == "fail" {
			out.fail = b
		} else {
			out.crash = b
		}
	}
	if raw, ok := p["log_lines"]; ok {
		n, ok := raw.(float64)
		if !ok || n != math.Trunc(n) || n < 0 || n > maxLogLines {
			return out, fmt.Errorf(`parameter "log_lines" must be a whole number from 0 to %d, got %s`, maxLogLines, describe(raw))
		}
		out.logLines = int(n)
	}
	return out, nil
}

func isKnown(k string) bool {
	for _, name := range known {
		if k == name {
			return true
		}
	}
	return false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", v)
	case float64:
		return fmt.Sprintf("%v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// Run logs, checks in, then holds, fails or crashes as asked.
func (Job) Run(ctx sdk.Context, p sdk.Parameters) error {
	prm, err := parse(p)
	if err != nil {
		return err
	}
	log := ctx.Logger()
	log.Info("DEMO job started", "job_id", ctx.JobID(), "image", prm.image)
	for i := 1; i <= prm.logLines; i++ {
		log.Info(fmt.Sprintf("log line %d of %d", i, prm.logLines))
	}
	for _, msg := range checkIns {
		if err := ctx.Checkin(msg); err != nil {
			return ended(ctx, err)
		}
	}
	switch {
	case prm.crash:
		log.Error("crashing the plugin process as asked")
		// Let the line above reach the host before the process dies.
		_ = ctx.Checkin("crashing")
		os.Exit(3)
	case prm.fail:
		log.Error("failing as asked")
		return errors.New("DEMO failed as asked (parameter fail=true)")
	}
	log.Info("holding", "seconds", prm.hold.Seconds())
	t := time.NewTimer(prm.hold)
	defer t.Stop()
	select {
	case <-t.C:
		log.Info("DEMO job done")
		return nil
	case <-ctx.Done():
		return ended(ctx, ctx.Err())
	}
}

// ended logs why the job ended early and returns err.
func ended(ctx sdk.Context, err error) error {
	if cmd, ok := ctx.OPCommand(); ok {
		ctx.Logger().Warn("received op command: " + string(cmd))
		return fmt.Errorf("DEMO %s: %w", cmd, context.Cause(ctx))
	}
	ctx.Logger().Warn("context done: " + context.Cause(ctx).Error())
	return err
}
