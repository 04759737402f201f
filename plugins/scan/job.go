package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/plugins/scan/scanapi"
	"github.com/berth-dev/berth/sdk"
)

// Job is the IMAGE_SCAN job type.
type Job struct{ h *holder }

var (
	_ sdk.Runner[Params]    = Job{}
	_ sdk.Validator[Params] = Job{}
	_ sdk.Retries           = Job{}
	_ sdk.Versioned         = Job{}
)

// newPlugin returns the job type and the configuration option that main
// serves (and tests serve through sdktest.WithPlugin).
func newPlugin(h *holder) (sdk.Job, sdk.Option) {
	return sdk.Typed[Params](Job{h: h}), sdk.WithConfig(h.Configure)
}

// MaxFails is Harbor's: one run.
func (Job) MaxFails() uint { return 1 }

// ShouldRetry is Harbor's: a failed scan is not retried.
func (Job) ShouldRetry() bool { return false }

// Version of the IMAGE_SCAN job.
func (Job) Version() string { return "1.0.0" }

// Validate refuses what no run could scan, naming the parameter.
func (j Job) Validate(p Params) error {
	_, err := parse(p, j.h.load().guard)
	return err
}

// maxOutput is what SetOutput takes (1 MiB), less room for the envelope.
const maxOutput = 1<<20 - 4<<10

// Output is the job's output: each report as the adapter sent it, and a
// summary.
type Output struct {
	ScanRequestID string             `json:"scan_request_id"`
	Registration  OutputRegistration `json:"registration"`
	Scanner       scanapi.Scanner    `json:"scanner"`
	Artifact      scanapi.Artifact   `json:"artifact"`
	Reports       []OutputReport     `json:"reports"`
	Summary       *Summary           `json:"summary,omitempty"`
}

// OutputRegistration names the scanner registration that scanned.
type OutputRegistration struct {
	UUID string `json:"uuid,omitempty"`
	Name string `json:"name,omitempty"`
}

// OutputReport is one report (Harbor's check-in report: digest,
// registration_uuid, mime_type, with the report as JSON rather than a
// string of it).
type OutputReport struct {
	Digest           string          `json:"digest"`
	RegistrationUUID string          `json:"registration_uuid,omitempty"`
	MimeType         string          `json:"mime_type"`
	Report           json.RawMessage `json:"report,omitempty"`
	// Omitted says why the report is not here (the output's size limit).
	Omitted string `json:"omitted,omitempty"`
	Bytes   int    `json:"bytes"`
}

// Summary counts the vulnerabilities of the (first) vulnerability
// report, and the components of the SBOM; a count is absent when its
// report was not asked for.
type Summary struct {
	Total      *int           `json:"total,omitempty"`
	Fixable    int            `json:"fixable,omitempty"`
	Severity   string         `json:"severity,omitempty"`
	BySeverity map[string]int `json:"by_severity,omitempty"`
	Components *int           `json:"components,omitempty"`
}

// errTimedOut is the cause of the run's context when timeout_seconds
// passes.
var errTimedOut = errors.New("timeout_seconds passed")

// Run drives the scan: metadata, submission, then each report.
func (j Job) Run(ctx sdk.Context, p Params) error {
	c := j.h.load()
	jb, err := parse(p, c.guard)
	if err != nil {
		return sdk.Permanent(err)
	}
	log := ctx.Logger()
	timeout := time.Duration(jb.timeout) * time.Second
	run, cancel := context.WithTimeoutCause(ctx, timeout, errTimedOut)
	defer cancel()
	cl := newClient(c, jb)
	r := &runner{ctx: ctx, run: run, cl: cl, jb: jb, timeout: timeout}
	log.Info("scanning", "registration", jb.reg.Name, "adapter", jb.base.Redacted(), "auth", orNone(jb.auth),
		"artifact", jb.req.Artifact.Repository+"@"+jb.req.Artifact.Digest, "mime_types", strings.Join(jb.mimes, ", "),
		"timeout", timeout)
	out, err := r.scan()
	if err != nil {
		log.Error(err.Error())
		return err
	}
	if err := ctx.SetOutput(out); err != nil {
		return fmt.Errorf("keep the reports as the job's output: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// runner is one run's state.
type runner struct {
	ctx     sdk.Context
	run     context.Context // ctx with the job's timeout
	cl      *client
	jb      *job
	timeout time.Duration
}

// checkin checks in msg and logs it.
func (r *runner) checkin(msg string) {
	r.ctx.Logger().Info(msg)
	_ = r.ctx.Checkin(msg)
}

// ended turns an error met when the run's context ended into the job's:
// the operator's stop (the host makes it Stopped) or the timeout.
func (r *runner) ended(what string) error {
	if r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	return sdk.Permanent(fmt.Errorf("%s timed out: not done within timeout_seconds (%s)", what, r.timeout))
}

func (r *runner) scan() (*Output, error) {
	md, err := r.cl.metadata(r.run)
	if err != nil {
		if r.run.Err() != nil {
			return nil, r.ended("the scanner's metadata")
		}
		return nil, err
	}
	sbomFormat, err := r.check(md)
	if err != nil {
		return nil, err
	}
	id, err := r.cl.submit(r.run)
	if err != nil {
		if r.run.Err() != nil {
			return nil, r.ended("the scan request")
		}
		return nil, err
	}
	r.ctx.Logger().Info("scan request id", "id", id)
	r.checkin("scan request accepted")
	out := &Output{
		ScanRequestID: id,
		Registration:  OutputRegistration{UUID: r.jb.reg.UUID, Name: r.jb.reg.Name},
		Scanner:       md.Scanner,
		Artifact:      r.jb.req.Artifact,
	}
	for _, m := range r.jb.mimes {
		query := ""
		if scanapi.SameMIME(m, scanapi.MimeSBOMReport) {
			query = sbomFormat
		}
		raw, err := r.poll(id, m, query)
		if err != nil {
			return nil, err
		}
		out.Reports = append(out.Reports, OutputReport{Digest: r.jb.req.Artifact.Digest, RegistrationUUID: r.jb.reg.UUID, MimeType: m, Report: raw, Bytes: len(raw)})
		r.checkin(fmt.Sprintf("report %s received", m))
	}
	out.Summary = summarize(out.Reports)
	fit(out, r.ctx)
	r.checkin(out.Summary.words())
	return out, nil
}

// check compares the adapter's metadata with the job: the artifact's
// type is consumed, and each report type produced for it. It returns the
// SBOM format to ask for.
func (r *runner) check(md *scanapi.Metadata) (string, error) {
	art := r.jb.req.Artifact.MimeType
	var caps []scanapi.Capability
	for _, c := range md.Capabilities {
		if art == "" || containsMIME(c.ConsumesMimeTypes, art) {
			caps = append(caps, c)
		}
	}
	name := md.Scanner.Name
	if name == "" {
		name = r.jb.base.Redacted()
	}
	if len(caps) == 0 {
		return "", sdk.Permanent(fmt.Errorf("the scanner %s does not scan artifacts of type %q", name, art))
	}
	sbomFormat := ""
	for _, m := range r.jb.mimes {
		var found *scanapi.Capability
		var all []string
		for i, c := range caps {
			all = append(all, c.ProducesMimeTypes...)
			if found == nil && containsMIME(c.ProducesMimeTypes, m) {
				found = &caps[i]
			}
		}
		if found == nil {
			return "", sdk.Permanent(fmt.Errorf("the scanner %s does not produce reports of type %q (it produces %s)", name, m, strings.Join(all, ", ")))
		}
		if scanapi.SameMIME(m, scanapi.MimeSBOMReport) {
			sbomFormat = r.sbomFormat(found)
		}
	}
	return sbomFormat, nil
}

// sbomFormat is the SBOM format to ask for: the scan request's, else the
// scanner's first, else CycloneDX.
func (r *runner) sbomFormat(c *scanapi.Capability) string {
	for _, e := range r.jb.req.EnabledCapabilities {
		if e.Type == scanapi.CapabilitySBOM {
			if l := stringList(e.Parameters[scanapi.AttrSBOMMediaTypes]); len(l) > 0 {
				return l[0]
			}
		}
	}
	if l := stringList(c.Additional[scanapi.AttrSBOMMediaTypes]); len(l) > 0 {
		return l[0]
	}
	return scanapi.MediaTypeCycloneDX
}

func stringList(v any) []string {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = l
	}
	return out
}

func containsMIME(list []string, m string) bool {
	for _, x := range list {
		if scanapi.SameMIME(x, m) {
			return true
		}
	}
	return false
}

// poll asks for one report until it comes, the adapter fails, the job
// is stopped or timeout_seconds passes.
func (r *runner) poll(id, mimeType, sbomFormat string) (json.RawMessage, error) {
	// One poll a second at most: the deadline bounds the count too.
	maxPolls := int(r.timeout/time.Second) + 10
	for range maxPolls {
		raw, wait, err := r.cl.report(r.run, id, mimeType, sbomFormat)
		switch {
		case err != nil && r.run.Err() != nil:
			return nil, r.ended("the report " + mimeType)
		case err != nil:
			return nil, err
		case wait == 0:
			return raw, nil
		}
		wait = min(max(wait, time.Second), r.cl.c.maxRefresh)
		r.ctx.Logger().Info("report not ready", "mime_type", mimeType, "retry_after", wait)
		r.checkin(fmt.Sprintf("not ready, retry after %ds", int(wait/time.Second)))
		t := time.NewTimer(wait)
		select {
		case <-r.run.Done():
			t.Stop()
			return nil, r.ended("the report " + mimeType)
		case <-t.C:
		}
	}
	return nil, sdk.Permanent(fmt.Errorf("the report %s timed out: not ready after %d polls", mimeType, maxPolls))
}

// summarize counts the vulnerabilities of the first vulnerability report
// and the components of the SBOM.
func summarize(reports []OutputReport) *Summary {
	s := &Summary{}
	for _, rep := range reports {
		switch {
		case s.Total == nil && (scanapi.SameMIME(rep.MimeType, scanapi.MimeVulnReport) || scanapi.SameMIME(rep.MimeType, scanapi.MimeNativeReport)):
			var v scanapi.VulnReport
			if json.Unmarshal(rep.Report, &v) != nil {
				continue
			}
			total := 0
			s.Total, s.BySeverity = &total, map[string]int{}
			for _, sev := range scanapi.Severities() {
				s.BySeverity[sev] = 0
			}
			top := -1
			for _, item := range v.Vulnerabilities {
				sev := scanapi.Severity(item.Severity)
				s.BySeverity[sev]++
				total++
				if item.FixVersion != "" {
					s.Fixable++
				}
				top = max(top, scanapi.SeverityRank(sev))
			}
			if top >= 0 {
				s.Severity = scanapi.Severities()[top]
			}
		case scanapi.SameMIME(rep.MimeType, scanapi.MimeSBOMReport):
			var sb struct {
				SBOM struct {
					Components []json.RawMessage `json:"components"`
				} `json:"sbom"`
			}
			if json.Unmarshal(rep.Report, &sb) == nil {
				n := len(sb.SBOM.Components)
				s.Components = &n
			}
		}
	}
	return s
}

// words is the summary's check-in.
func (s *Summary) words() string {
	var parts []string
	if s.Total != nil {
		sevs := scanapi.Severities()
		counts := make([]string, 0, len(sevs))
		for i := len(sevs) - 1; i >= 0; i-- {
			counts = append(counts, fmt.Sprintf("%s %d", sevs[i], s.BySeverity[sevs[i]]))
		}
		noun := "vulnerabilities"
		if *s.Total == 1 {
			noun = "vulnerability"
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s), %d fixable", *s.Total, noun, strings.Join(counts, ", "), s.Fixable))
	}
	if s.Components != nil {
		parts = append(parts, fmt.Sprintf("SBOM of %d components", *s.Components))
	}
	if len(parts) == 0 {
		return "scan done"
	}
	return "scan done: " + strings.Join(parts, "; ")
}

// fit keeps the output within SetOutput's limit: the largest reports give
// way first, each replaced by a note of its size.
func fit(out *Output, ctx sdk.Context) {
	for {
		raw, err := json.Marshal(out)
		if err != nil || len(raw) <= maxOutput {
			return
		}
		idx := make([]int, 0, len(out.Reports))
		for i, rep := range out.Reports {
			if rep.Report != nil {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return
		}
		sort.Slice(idx, func(a, b int) bool { return out.Reports[idx[a]].Bytes > out.Reports[idx[b]].Bytes })
		rep := &out.Reports[idx[0]]
		rep.Report = nil
		rep.Omitted = fmt.Sprintf("the report of %d bytes does not fit in the job's output (at most 1 MiB); fetch it from the adapter", rep.Bytes)
		ctx.Logger().Warn("report left out of the output", "mime_type", rep.MimeType, "bytes", rep.Bytes)
	}
}
