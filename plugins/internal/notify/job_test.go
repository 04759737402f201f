package notify

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// The tests run Post as the plugins do, from a job served by the sdk's
// server: testJob is the least of plugins/webhook.

// testParams are testJob's parameters.
type testParams struct {
	Payload        string `json:"payload"`
	Address        string `json:"address"`
	SkipCertVerify bool   `json:"skip_cert_verify,omitempty"`
	RateLimited    bool   `json:"rate_limited,omitempty"`
}

// testJob POSTs the payload once, showing the address Redacted.
type testJob struct{ h *Holder }

func (j testJob) MaxFails() uint { return j.h.MaxFails() }

func (testJob) ShouldRetry() bool { return true }

func (j testJob) Validate(p testParams) error {
	_, err := j.h.Load().Target(p.Address, Redacted)
	return err
}

func (j testJob) Run(ctx sdk.Context, p testParams) error {
	s := j.h.Load()
	u, err := s.Target(p.Address, Redacted)
	if err != nil {
		return sdk.Permanent(err)
	}
	_, err = s.Post(ctx, Delivery{URL: u, Shown: Redacted(u), Payload: p.Payload, SkipVerify: p.SkipCertVerify, RateLimited: p.RateLimited})
	return err
}

// env is a fake environment.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// plugin is a plugin serving testJob, with what it tells the operator.
type plugin struct {
	job    sdk.Job
	config sdk.Option
	h      *Holder

	mu    sync.Mutex
	warns []string
}

func newTestPlugin(e env) *plugin {
	p := &plugin{}
	p.h = &Holder{Section: "test", Lookup: e.lookup, Warn: func(msg string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.warns = append(p.warns, msg)
	}}
	p.job, p.config = sdk.Typed[testParams](testJob{h: p.h}), sdk.WithConfig(p.h.Configure)
	return p
}

func (p *plugin) warnings() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.warns, "\n")
}

// run runs the job to its end through the sdk's server, with settings as
// its plugin_config section (nil: none).
func (p *plugin) run(t *testing.T, params map[string]any, settings map[string]any) sdktest.Result {
	t.Helper()
	return sdktest.Run(t, p.job, params, p.options(settings)...)
}

func (p *plugin) validate(t *testing.T, params map[string]any, settings map[string]any) error {
	t.Helper()
	return sdktest.Validate(t, p.job, params, p.options(settings)...)
}

func (p *plugin) options(settings map[string]any) []sdktest.Option {
	opts := []sdktest.Option{sdktest.WithPlugin(p.config)}
	if settings != nil {
		opts = append(opts, sdktest.WithConfig(settings))
	}
	return opts
}

// allowLoopback is the section that lets the job call the tests'
// loopback receivers.
var allowLoopback = map[string]any{"allowed_networks": []string{"127.0.0.0/8", "::1"}}

// receiver is a loopback HTTP server that counts requests and answers
// with answer (200 when nil).
type receiver struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	reqs []string // method and request URI
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, r.Method+" "+r.RequestURI)
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.reqs...)
}

// logText is the job's log as one text.
func logText(res sdktest.Result) string {
	var b strings.Builder
	for _, l := range res.Logs {
		b.WriteString(l.Level + " " + l.Message + "\n")
	}
	return b.String()
}
