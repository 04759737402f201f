package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/plugins/internal/notify"
	"github.com/berth-dev/berth/sdk"
)

// Params are Harbor's parameters of a SLACK job (Harbor core's Slack
// notification handler sets them; its job reads them in
// src/jobservice/job/impl/notification/slack_job.go).
type Params struct {
	Payload        string `json:"payload" jsonschema:"description=the message in Slack's JSON (Harbor: blocks made from the event)"`
	Address        string `json:"address" jsonschema:"description=the URL of the Slack incoming webhook"`
	SkipCertVerify bool   `json:"skip_cert_verify,omitempty" jsonschema:"description=do not verify the receiver's TLS certificate"`
}

// Settings are plugin_config.slack: the HTTP jobs' settings and the pace
// of messages.
type Settings struct {
	notify.Settings
	// MinIntervalMS is how long a run holds the job type's one slot after
	// a message (Harbor sleeps a second after each, for Slack's limit of
	// about a message a second per webhook).
	MinIntervalMS *int `json:"min_interval_ms,omitempty" jsonschema:"minimum=0,maximum=60000,description=milliseconds between two messages (default 1000)"`
}

// defaultInterval is Harbor's second between two Slack messages.
const defaultInterval = time.Second

// state is the plugin's: its sender and its pace.
type state struct {
	h *notify.Holder
	// interval is the pause after a message, in nanoseconds.
	interval atomic.Int64
}

// Job is the SLACK job type: one message to a Slack incoming webhook.
type Job struct{ s *state }

var (
	_ sdk.Runner[Params]    = Job{}
	_ sdk.Validator[Params] = Job{}
	_ sdk.Retries           = Job{}
	_ sdk.Concurrency       = Job{}
	_ sdk.Versioned         = Job{}
)

// newPlugin returns the job type and the configuration option that main
// serves (and tests serve through sdktest.WithPlugin).
func newPlugin(h *notify.Holder) (sdk.Job, sdk.Option) {
	h.Section = "slack"
	s := &state{h: h}
	s.interval.Store(int64(defaultInterval))
	return sdk.Typed[Params](Job{s: s}), sdk.WithConfig(s.configure)
}

func (s *state) configure(c Settings) error {
	interval := defaultInterval
	if c.MinIntervalMS != nil {
		if *c.MinIntervalMS < 0 || *c.MinIntervalMS > 60000 {
			return fmt.Errorf(`setting "min_interval_ms" must be from 0 to 60000, got %d`, *c.MinIntervalMS)
		}
		interval = time.Duration(*c.MinIntervalMS) * time.Millisecond
	}
	if err := s.h.Configure(c.Settings); err != nil {
		return err
	}
	s.interval.Store(int64(interval))
	return nil
}

// MaxFails is Harbor's: JOBSERVICE_WEBHOOK_JOB_MAX_RETRY (the Slack job
// reads the webhook job's variable), default 3; plugin_config.slack.max_fails
// wins over it.
func (j Job) MaxFails() uint { return j.s.h.MaxFails() }

// ShouldRetry is Harbor's: failed messages are retried.
func (Job) ShouldRetry() bool { return true }

// MaxConcurrency is Harbor's: one message at a time, across every host,
// which with the pause after each keeps to Slack's rate.
func (Job) MaxConcurrency() uint { return 1 }

// Version of the SLACK job.
func (Job) Version() string { return "1.0.0" }

// Validate refuses at submission an address no run could deliver to.
// The payload is not checked: Slack reads what Harbor sends, which is
// not always strict JSON.
func (j Job) Validate(p Params) error {
	_, err := request(j.s.h.Load(), p)
	return err
}

// Run posts the message once. A 429 from Slack snoozes the job for the
// Retry-After Slack gives (Harbor fails the run and lets the retry's
// backoff guess); any other answer is judged as the webhook job's.
// After a message Slack answered, the run keeps the job type's slot for
// min_interval_ms, as Harbor sleeps a second.
func (j Job) Run(ctx sdk.Context, p Params) error {
	sender := j.s.h.Load()
	d, err := request(sender, p)
	if err != nil {
		return sdk.Permanent(err)
	}
	status, err := sender.Post(ctx, d)
	if status != 0 && status != http.StatusTooManyRequests {
		pause(ctx, time.Duration(j.s.interval.Load()))
	}
	return err
}

func request(sender *notify.Sender, p Params) (notify.Delivery, error) {
	u, err := sender.Target(p.Address, show)
	if err != nil {
		return notify.Delivery{}, err
	}
	return notify.Delivery{URL: u, Shown: show(u), Payload: p.Payload, Header: http.Header{"Content-Type": {"application/json"}},
		SkipVerify: p.SkipCertVerify, RateLimited: true}, nil
}

// pause waits d, or until the job is told to end.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// show is how an address appears in the job's log and errors: a Slack
// incoming webhook's path is its secret (/services/T…/B…/<token>), so
// only the scheme, the host and the path's first part show.
func show(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	if path == "" {
		return s
	}
	first, rest, _ := strings.Cut(path, "/")
	s += "/" + first
	if rest != "" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
