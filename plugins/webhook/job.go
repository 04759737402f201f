package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/plugins/internal/notify"
	"github.com/berth-dev/berth/sdk"
)

// Params are Harbor's parameters of a WEBHOOK job (Harbor core's
// notification HTTP handler sets them; its job reads them in
// src/jobservice/job/impl/notification/webhook_job.go).
type Params struct {
	Payload string `json:"payload" jsonschema:"description=the body to POST (Harbor: the event as JSON)"`
	Address string `json:"address" jsonschema:"description=the http or https URL to POST the payload to"`
	// Header is the JSON of an http.Header, as Harbor encodes it
	// (json.Marshal of the header its payload formatter made, with the
	// policy's auth header as Authorization). It replaces the request's
	// headers, as in Harbor.
	Header string `json:"header,omitempty" jsonschema:"description=the request's headers: the JSON of an HTTP header map such as {\"Content-Type\":[\"application/json\"]}"`
	// AuthHeader is what Harbor cores before the header parameter send:
	// the Authorization header's value.
	AuthHeader     string `json:"auth_header,omitempty" jsonschema:"description=the Authorization header's value (older Harbor cores)"`
	SkipCertVerify bool   `json:"skip_cert_verify,omitempty" jsonschema:"description=do not verify the receiver's TLS certificate"`
}

// Job is the WEBHOOK job type: one POST of a payload.
type Job struct{ h *notify.Holder }

var (
	_ sdk.Runner[Params]    = Job{}
	_ sdk.Validator[Params] = Job{}
	_ sdk.Retries           = Job{}
	_ sdk.Versioned         = Job{}
)

// newPlugin returns the job type and the configuration option that main
// serves (and tests serve through sdktest.WithPlugin).
func newPlugin(h *notify.Holder) (sdk.Job, sdk.Option) {
	h.Section = "webhook"
	return sdk.Typed[Params](Job{h: h}), sdk.WithConfig(h.Configure)
}

// MaxFails is Harbor's: JOBSERVICE_WEBHOOK_JOB_MAX_RETRY, default 3;
// plugin_config.webhook.max_fails wins over it.
func (j Job) MaxFails() uint { return j.h.MaxFails() }

// ShouldRetry is Harbor's: failed deliveries are retried.
func (Job) ShouldRetry() bool { return true }

// Version of the WEBHOOK job.
func (Job) Version() string { return "1.0.0" }

// Validate refuses at submission what no run could deliver: an address
// that is not an http or https URL, an IP address in a refused range, a
// header parameter that is not a header map.
func (j Job) Validate(p Params) error {
	_, err := request(j.h.Load(), p)
	return err
}

// Run POSTs the payload once. What the receiver's answer means for the
// job is decided in notify's Post; a bad address or header fails for good
// (the job was submitted before a configuration change, or without
// Validate).
func (j Job) Run(ctx sdk.Context, p Params) error {
	s := j.h.Load()
	d, err := request(s, p)
	if err != nil {
		return sdk.Permanent(err)
	}
	_, err = s.Post(ctx, d)
	return err
}

// request makes the delivery of p.
func request(s *notify.Sender, p Params) (notify.Delivery, error) {
	u, err := s.Target(p.Address, notify.Redacted)
	if err != nil {
		return notify.Delivery{}, err
	}
	header, err := decodeHeader(p.Header)
	if err != nil {
		return notify.Delivery{}, err
	}
	if header == nil {
		// What Harbor's job sent before cores passed the header.
		header = http.Header{"Content-Type": {"application/json"}}
	}
	if p.AuthHeader != "" {
		if !validValue(p.AuthHeader) {
			return notify.Delivery{}, fmt.Errorf(`parameter "auth_header" must not hold a line break or other control character`)
		}
		header.Set("Authorization", p.AuthHeader)
	}
	return notify.Delivery{URL: u, Shown: notify.Redacted(u), Payload: p.Payload, Header: header, SkipVerify: p.SkipCertVerify}, nil
}

// decodeHeader decodes the header parameter as Harbor does (JSON into an
// http.Header, names kept as written), and checks that every name and
// value can be sent, which Harbor leaves to the HTTP client's refusal of
// each retry.
func decodeHeader(raw string) (http.Header, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var h http.Header
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, fmt.Errorf(`parameter "header" must be the JSON of an HTTP header map, such as {"Content-Type":["application/json"]}: %v`, err)
	}
	for name, values := range h {
		if !validName(name) {
			return nil, fmt.Errorf(`parameter "header" has %q, which is not a header name`, name)
		}
		for _, v := range values {
			if !validValue(v) {
				return nil, fmt.Errorf(`parameter "header": the value of %q must not hold a line break or other control character`, name)
			}
		}
	}
	return h, nil
}

// validName: an HTTP token (RFC 9110).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validValue: no control character but a tab.
func validValue(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
