package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/plugins/internal/notify"
	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// env is a fake environment.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// plugin is one plugin as its main makes it, with what it tells the
// operator.
type plugin struct {
	job    sdk.Job
	config sdk.Option
	h      *notify.Holder

	mu    sync.Mutex
	warns []string
}

func newTestPlugin(e env) *plugin {
	p := &plugin{}
	p.h = &notify.Holder{Lookup: e.lookup, Warn: func(msg string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.warns = append(p.warns, msg)
	}}
	p.job, p.config = newPlugin(p.h)
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

// received is a request a receiver got.
type received struct {
	method, path string
	header       http.Header
	body         string
}

// receiver is a loopback HTTP server that records requests and answers
// with answer (200 when nil).
type receiver struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{r.Method, r.RequestURI, r.Header.Clone(), string(body)})
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// via returns the receiver's URL with its host named host (port kept).
func (rc *receiver) via(host, path string) string {
	u, _ := url.Parse(rc.srv.URL)
	return "http://" + host + ":" + u.Port() + path
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		params   map[string]any
		settings map[string]any
		wantErr  string // substring; "" means valid
	}{
		{"Minimal", map[string]any{"payload": "{}", "address": "https://hooks.example.com/x"}, nil, ""},
		{"AllSet", map[string]any{"payload": "{}", "address": "http://hooks.example.com:8080/x?a=1", "skip_cert_verify": true,
			"header": `{"Content-Type":["application/json"],"Authorization":["Bearer t"]}`, "auth_header": "Basic x"}, nil, ""},
		{"EmptyPayload", map[string]any{"payload": "", "address": "https://hooks.example.com/x"}, nil, ""},
		{"NullHeader", map[string]any{"payload": "{}", "address": "https://h.example.com/", "header": "null"}, nil, ""},
		{"UpperCaseScheme", map[string]any{"payload": "{}", "address": "HTTPS://hooks.example.com/x"}, nil, ""},
		{"PublicIP", map[string]any{"payload": "{}", "address": "http://93.184.216.34/x"}, nil, ""},
		{"NoParams", nil, nil, `parameter "address" is required`},
		{"NoPayload", map[string]any{"address": "https://hooks.example.com/x"}, nil, `parameter "payload" is required`},
		{"PayloadNotString", map[string]any{"payload": map[string]any{"a": 1}, "address": "https://h.example.com/"}, nil, `parameter "payload" must be a string`},
		{"SkipNotBool", map[string]any{"payload": "{}", "address": "https://h.example.com/", "skip_cert_verify": "yes"}, nil, `"skip_cert_verify" must be true or false`},
		{"Unknown", map[string]any{"payload": "{}", "address": "https://h.example.com/", "secret": "x"}, nil, `unknown parameter "secret"`},
		{"FTP", map[string]any{"payload": "{}", "address": "ftp://files.example.com/x"}, nil, `parameter "address" must be an http or https URL, got one with scheme "ftp"`},
		{"NoScheme", map[string]any{"payload": "{}", "address": "hooks.example.com/x"}, nil, `parameter "address" must be an http or https URL, got one with no scheme`},
		{"NoHost", map[string]any{"payload": "{}", "address": "http:///x"}, nil, `parameter "address" must be an http or https URL with a host`},
		{"Opaque", map[string]any{"payload": "{}", "address": "http:hooks.example.com"}, nil, `with a host`},
		{"Malformed", map[string]any{"payload": "{}", "address": "http://h.example.com:80x/"}, nil, `parameter "address" must be an http or https URL: invalid port ":80x"`},
		{"PortRange", map[string]any{"payload": "{}", "address": "http://h.example.com:70000/"}, nil, `port "70000", which must be from 1 to 65535`},
		{"Loopback", map[string]any{"payload": "{}", "address": "http://127.0.0.1:8080/hook"}, nil,
			`parameter "address" (http://127.0.0.1:8080/hook) is refused: 127.0.0.1 is in 127.0.0.0/8 (loopback), a range this service does not call`},
		{"LoopbackAllowed", map[string]any{"payload": "{}", "address": "http://127.0.0.1:8080/hook"}, allowLoopback, ""},
		{"Metadata", map[string]any{"payload": "{}", "address": "http://169.254.169.254/latest/meta-data"}, allowLoopback,
			`169.254.169.254 is in 169.254.0.0/16 (link-local (cloud metadata))`},
		{"Private", map[string]any{"payload": "{}", "address": "https://10.1.2.3/"}, nil, `10.1.2.3 is in 10.0.0.0/8 (private)`},
		{"IPv6Loopback", map[string]any{"payload": "{}", "address": "http://[::1]:9/"}, map[string]any{"allowed_networks": []string{"127.0.0.0/8"}}, `::1 is in ::1/128 (loopback)`},
		{"Mapped", map[string]any{"payload": "{}", "address": "http://[::ffff:127.0.0.1]/"}, nil, `127.0.0.1 is in 127.0.0.0/8 (loopback)`},
		{"Unspecified", map[string]any{"payload": "{}", "address": "http://0.0.0.0:80/"}, nil, `0.0.0.0 is in 0.0.0.0/8 (unspecified)`},
		{"HeaderNotJSON", map[string]any{"payload": "{}", "address": "https://h.example.com/", "header": "Authorization: x"}, nil,
			`parameter "header" must be the JSON of an HTTP header map, such as {"Content-Type":["application/json"]}`},
		{"HeaderValuesNotLists", map[string]any{"payload": "{}", "address": "https://h.example.com/", "header": `{"Authorization":"x"}`}, nil,
			`parameter "header" must be the JSON of an HTTP header map`},
		{"HeaderObject", map[string]any{"payload": "{}", "address": "https://h.example.com/", "header": map[string]any{"A": []string{"b"}}}, nil,
			`parameter "header" must be a string`},
		{"HeaderBadName", map[string]any{"payload": "{}", "address": "https://h.example.com/", "header": `{"Bad Name":["x"]}`}, nil,
			`parameter "header" has "Bad Name", which is not a header name`},
		{"HeaderLineBreak", map[string]any{"payload": "{}", "address": "https://h.example.com/", "header": `{"X-A":["a\r\nHost: evil"]}`}, nil,
			`parameter "header": the value of "X-A" must not hold a line break`},
		{"AuthHeaderLineBreak", map[string]any{"payload": "{}", "address": "https://h.example.com/", "auth_header": "a\nb"}, nil,
			`parameter "auth_header" must not hold a line break`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := newTestPlugin(env{}).validate(t, tc.params, tc.settings)
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

func TestDeliversWithHarborsHeader(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	// What Harbor's core passes: json.Marshal of an http.Header.
	header, err := json.Marshal(http.Header{
		"Content-Type":  {"application/json"},
		"Authorization": {"Bearer s3cret"},
		"X-Multi":       {"one", "two"},
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"type":"PUSH_ARTIFACT","occur_at":1700000000,"event_data":{"repository":{"name":"busybox"}}}`
	p := newTestPlugin(env{})
	res := p.run(t, map[string]any{"payload": payload, "address": rc.srv.URL + "/hook?token=q", "header": string(header)}, allowLoopback)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.method != http.MethodPost || got.path != "/hook?token=q" || got.body != payload {
		t.Fatalf("the receiver got %s %s %q", got.method, got.path, got.body)
	}
	for name, want := range map[string]string{"Content-Type": "application/json", "Authorization": "Bearer s3cret", "X-Multi": "one,two"} {
		if v := strings.Join(got.header.Values(name), ","); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	log := logText(res)
	if !strings.Contains(log, "INFO posting the payload address=http://127.0.0.1:") || !strings.Contains(log, "/hook?… bytes=93") ||
		!strings.Contains(log, "INFO answered status=200") {
		t.Errorf("log:\n%s", log)
	}
	if strings.Contains(log, "s3cret") || strings.Contains(log, "token=q") {
		t.Errorf("the log shows a secret:\n%s", log)
	}
}

func TestWithoutHeaderTheRequestSaysJSONAndAuthHeaderSetsAuthorization(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	p := newTestPlugin(env{})
	res := p.run(t, map[string]any{"payload": "{}", "address": rc.srv.URL, "auth_header": "Basic YWxhZGRpbjpvcGVu"}, allowLoopback)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	h := rc.requests()[0].header
	if h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Basic YWxhZGRpbjpvcGVu" {
		t.Fatalf("headers %v", h)
	}
	// With a header parameter, it is the whole of the headers (Harbor
	// replaces them): no Content-Type unless it says one.
	res = p.run(t, map[string]any{"payload": "x", "address": rc.srv.URL, "header": `{"X-Only":["1"]}`}, allowLoopback)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if h := rc.requests()[1].header; h.Get("X-Only") != "1" || h.Get("Content-Type") != "" {
		t.Fatalf("headers %v", h)
	}
}

func TestTheGuardRefusesLoopbackUnlessAllowed(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	p := newTestPlugin(env{})
	// A literal IP is refused at submission.
	if err := p.validate(t, map[string]any{"payload": "{}", "address": rc.srv.URL}, nil); err == nil || !strings.Contains(err.Error(), "(loopback)") {
		t.Fatalf("Validate of %s = %v", rc.srv.URL, err)
	}
	// A name is resolved, and its address refused when dialled: nothing
	// reaches the receiver, the failure is permanent and names the
	// address and the range.
	address := rc.via("localhost", "/hook")
	res := p.run(t, map[string]any{"payload": "{}", "address": address}, nil)
	if res.Kind != sdktest.FailedPermanently {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	msg := res.Err.Error()
	if !strings.HasPrefix(msg, "POST "+address+" refused: ") || !strings.Contains(msg, "(loopback), a range this service does not call") {
		t.Fatalf("error %q", msg)
	}
	if strings.Contains(msg, "allowed_networks") {
		t.Errorf("the job's error names the setting (Harbor keeps it for the operator): %q", msg)
	}
	if w := p.warnings(); !strings.Contains(w, "plugin_config.webhook.allowed_networks") || !strings.Contains(w, address) {
		t.Errorf("the operator was told %q", w)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
	// Allowed by the configuration, it is delivered.
	for _, a := range []string{rc.srv.URL, address} {
		if res := p.run(t, map[string]any{"payload": "{}", "address": a}, allowLoopback); res.Kind != sdktest.Succeeded {
			t.Fatalf("%s allowed: %s %v", a, res.Kind, res.Err)
		}
	}
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("the receiver got %d requests, want 2", n)
	}
}

// MaxFails follows the holder: Harbor's env variable, default 3 (the
// settings that win over it are notify's to test).
func TestDeclaresHarborsRetries(t *testing.T) {
	t.Parallel()
	for e, want := range map[string]uint{"": 3, "0": 0, "7": 7, "many": 3} {
		lookup := env{}
		if e != "" {
			lookup["JOBSERVICE_WEBHOOK_JOB_MAX_RETRY"] = e
		}
		var r sdk.Retries = Job{h: &notify.Holder{Lookup: lookup.lookup}}
		if got := r.MaxFails(); got != want || !r.ShouldRetry() {
			t.Errorf("env %q: MaxFails %d ShouldRetry %v, want %d true", e, got, r.ShouldRetry(), want)
		}
	}
	p := newTestPlugin(env{"JOBSERVICE_WEBHOOK_JOB_MAX_RETRY": "7"})
	two := uint(2)
	if err := p.h.Configure(notify.Settings{MaxFails: &two}); err != nil {
		t.Fatal(err)
	}
	if got := (Job{h: p.h}).MaxFails(); got != 2 {
		t.Errorf("after max_fails 2: MaxFails %d", got)
	}
}

// logText is the job's log as one text.
func logText(res sdktest.Result) string {
	var b strings.Builder
	for _, l := range res.Logs {
		b.WriteString(l.Level + " " + l.Message + "\n")
	}
	return b.String()
}
