package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/sdk"
)

// Params are the DEMO job's parameters; the host checks them against the
// JSON Schema the sdk derives from this struct.
type Params struct {
	Image       string   `json:"image" jsonschema:"description=a string starting with \"demo\""`
	HoldSeconds *float64 `json:"hold_seconds,omitempty" jsonschema:"minimum=0,maximum=3600"`
	Fail        bool     `json:"fail,omitempty"`
	Crash       bool     `json:"crash,omitempty"`
	LogLines    int      `json:"log_lines,omitempty" jsonschema:"minimum=0,maximum=100000"`
}

// Job is the DEMO job: three failed runs allowed, retried.
type Job struct{}

var (
	_ sdk.Validator[Params] = Job{}
	_ sdk.Retries           = Job{}
	_ sdk.Versioned         = Job{}
)

// MaxFails allows three failed runs.
func (Job) MaxFails() uint { return 3 }

// ShouldRetry retries failed runs.
func (Job) ShouldRetry() bool { return true }

// Version of the DEMO job.
func (Job) Version() string { return "2.0.0" }

// Validate checks what the schema cannot: the image's prefix.
func (Job) Validate(p Params) error {
	if !strings.HasPrefix(p.Image, "demo") {
		return fmt.Errorf(`parameter "image" must start with "demo", got %q`, p.Image)
	}
	return nil
}

// Check-in messages, in order.
var checkIns = []string{"progress data: %30", "progress data: %60"}

// Run logs, checks in, then holds, fails or crashes as asked.
func (Job) Run(ctx sdk.Context, p Params) error {
	hold := 30 * time.Second
	if p.HoldSeconds != nil {
		hold = time.Duration(*p.HoldSeconds * float64(time.Second))
	}
	log := ctx.Logger()
	log.Info("DEMO job started", "job_id", ctx.JobID(), "image", p.Image)
	for i := 1; i <= p.LogLines; i++ {
		log.Info(fmt.Sprintf("log line %d of %d", i, p.LogLines))
	}
	for _, msg := range checkIns {
		if err := ctx.Checkin(msg); err != nil {
			return ended(ctx, err)
		}
	}
	switch {
	case p.Crash:
		log.Error("crashing the plugin process as asked")
		_ = ctx.Checkin("crashing")
		// A check-in is not answered: give it and the line above a moment
		// on the stream before the process dies.
		time.Sleep(200 * time.Millisecond)
		os.Exit(3)
	case p.Fail:
		log.Error("failing as asked")
		return errors.New("DEMO failed as asked (parameter fail=true)")
	}
	log.Info("holding", "seconds", hold.Seconds())
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
		log.Info("DEMO job done")
		return nil
	case <-ctx.Done():
		return ended(ctx, context.Cause(ctx))
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
