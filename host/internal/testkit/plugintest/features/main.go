package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/sdk"
)

// typed has a parameter schema and no Validate: the host alone decides.
type typed struct{ sdk.Defaults }

type typedParams struct {
	Count int    `json:"count" jsonschema:"minimum=1,maximum=10"`
	Label string `json:"label,omitempty"`
}

func (typed) Run(ctx sdk.Context, p typedParams) error {
	return ctx.Checkin(fmt.Sprintf("count=%d label=%s attempt=%d", p.Count, p.Label, ctx.Attempt()))
}

// output succeeds with its "value" parameter as its output.
type output struct{ sdk.Defaults }

func (output) Run(ctx sdk.Context, p sdk.Parameters) error { return ctx.SetOutput(p["value"]) }

// permanent fails in a way no retry mends (it would be retried otherwise).
type permanent struct{ sdk.Defaults }

func (permanent) Run(ctx sdk.Context, _ sdk.Parameters) error {
	_ = ctx.Checkin(fmt.Sprintf("attempt %d", ctx.Attempt()))
	return sdk.Permanent(errors.New("wrong password"))
}

// snooze snoozes for "seconds" until it has snoozed "times" times in
// this process, checking in each run, then succeeds.
type snooze struct {
	sdk.Defaults
	mu   *sync.Mutex
	runs map[string]int
}

func (snooze) MaxSnoozes() uint { return 3 }

func (s snooze) Run(ctx sdk.Context, p sdk.Parameters) error {
	s.mu.Lock()
	s.runs[ctx.JobID()]++
	n := s.runs[ctx.JobID()]
	s.mu.Unlock()
	_ = ctx.Checkin(fmt.Sprintf("run %d attempt %d", n, ctx.Attempt()))
	times, _ := p["times"].(float64)
	if n <= int(times) {
		secs, _ := p["seconds"].(float64)
		return sdk.Snooze(time.Duration(secs*float64(time.Second)), fmt.Sprintf("not ready (run %d)", n))
	}
	return nil
}

// fixtureConfig is the fixture plugin's section of plugin_config.
type fixtureConfig struct {
	Greeting string `json:"greeting,omitempty"`
	Token    string `json:"token,omitempty"`
	// MaxFails of CONFIG: a declaration that follows the configuration.
	MaxFails uint `json:"max_fails,omitempty"`
}

// config checks in the plugin's configuration as Configure handed it.
type config struct {
	sdk.Defaults
	cfg *fixtureConfig
}

// MaxFails is the configuration's, or 2.
func (c config) MaxFails() uint {
	if c.cfg.MaxFails > 0 {
		return c.cfg.MaxFails
	}
	return 2
}

func (c config) Run(ctx sdk.Context, _ sdk.Parameters) error {
	return ctx.Checkin(fmt.Sprintf("greeting=%s token_length=%d", c.cfg.Greeting, len(c.cfg.Token)))
}

// chatty logs "lines" lines and checks in "checkins" times.
type chatty struct{ sdk.Defaults }

func (chatty) Run(ctx sdk.Context, p sdk.Parameters) error {
	lines, _ := p["lines"].(float64)
	checkins, _ := p["checkins"].(float64)
	for i := range int(lines) {
		ctx.Logger().Info("line", "n", i)
	}
	for i := range int(checkins) {
		if err := ctx.Checkin(fmt.Sprintf("step %d", i+1)); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	cfg := &fixtureConfig{}
	jobs := sdk.Jobs{
		"TYPED":     sdk.Typed[typedParams](typed{}),
		"OUTPUT":    sdk.Typed[sdk.Parameters](output{}),
		"PERMANENT": sdk.Typed[sdk.Parameters](permanent{}),
		"SNOOZE":    sdk.Typed[sdk.Parameters](snooze{mu: &sync.Mutex{}, runs: map[string]int{}}),
		"CONFIG":    sdk.Typed[sdk.Parameters](config{cfg: cfg}),
		"CHATTY":    sdk.Typed[sdk.Parameters](chatty{}),
	}
	err := sdk.Serve(jobs, sdk.WithConfig(func(c fixtureConfig) error {
		if c.Greeting == "refuse" {
			return errors.New(`setting "greeting" must not be "refuse"`)
		}
		*cfg = c
		return nil
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
