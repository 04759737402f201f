package notify

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/sdk/egress"
	"github.com/berth-dev/berth/sdk/sdktest"
)

func TestTarget(t *testing.T) {
	t.Parallel()
	def := (&Holder{Lookup: env{}.lookup}).Load()
	allowing := &Holder{Lookup: env{}.lookup}
	if err := allowing.Configure(Settings{AllowedNetworks: []string{"127.0.0.0/8"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		address string
		s       *Sender
		want    string // the URL; "" when refused
		wantErr string // the whole error
		refused bool   // the error holds an *egress.RefusedError
	}{
		{"HTTPS", "https://hooks.example.com/x", def, "https://hooks.example.com/x", "", false},
		{"Trimmed", " http://hooks.example.com:8080/x?a=1 \n", def, "http://hooks.example.com:8080/x?a=1", "", false},
		{"UpperCaseScheme", "HTTPS://hooks.example.com/x", def, "https://hooks.example.com/x", "", false},
		{"PublicIP", "http://93.184.216.34/x", def, "http://93.184.216.34/x", "", false},
		{"NameNotResolved", "http://localhost:8080/x", def, "http://localhost:8080/x", "", false},
		{"Allowed", "http://127.0.0.1:8080/hook", allowing.Load(), "http://127.0.0.1:8080/hook", "", false},
		{"FTP", "ftp://files.example.com/x", def, "", `parameter "address" must be an http or https URL, got one with scheme "ftp"`, false},
		{"NoScheme", "hooks.example.com/x", def, "", `parameter "address" must be an http or https URL, got one with no scheme`, false},
		{"NoHost", "http:///x?sig=t0ken", def, "", `parameter "address" must be an http or https URL with a host, got http:///x?…`, false},
		{"Opaque", "http:hooks.example.com", def, "", `parameter "address" must be an http or https URL with a host, got http:hooks.example.com`, false},
		{"Malformed", "http://u:pa55word@h.example.com:80x/?sig=t0ken", def, "", `parameter "address" must be an http or https URL: invalid port ":80x" after host`, false},
		{"PortZero", "http://h.example.com:0/", def, "", `parameter "address" has port "0", which must be from 1 to 65535`, false},
		{"PortRange", "http://h.example.com:70000/", def, "", `parameter "address" has port "70000", which must be from 1 to 65535`, false},
		{"Loopback", "http://u:pa55word@127.0.0.1:8080/hook?sig=t0ken", def, "",
			`parameter "address" (http://u:xxxxx@127.0.0.1:8080/hook?…) is refused: 127.0.0.1 is in 127.0.0.0/8 (loopback), a range this service does not call`, true},
		{"Mapped", "http://[::ffff:10.0.0.1]/", def, "", `parameter "address" (http://[::ffff:10.0.0.1]/) is refused: 10.0.0.1 is in 10.0.0.0/8 (private), a range this service does not call`, true},
		{"MetadataNotAllowed", "http://169.254.169.254/latest/meta-data", allowing.Load(), "",
			`parameter "address" (http://169.254.169.254/latest/meta-data) is refused: 169.254.169.254 is in 169.254.0.0/16 (link-local (cloud metadata)), a range this service does not call`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := tc.s.Target(tc.address, Redacted)
			if tc.wantErr == "" {
				if err != nil || u.String() != tc.want {
					t.Fatalf("Target(%q) = %v, %v; want %s", tc.address, u, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Target(%q) = %v, want %q", tc.address, err, tc.wantErr)
			}
			var r *egress.RefusedError
			if errors.As(err, &r) != tc.refused {
				t.Errorf("Target(%q): a refusal %v, want %v", tc.address, !tc.refused, tc.refused)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	for address, want := range map[string]string{
		"https://hooks.example.com/x":                     "https://hooks.example.com/x",
		"https://user:pa55word@h.example.com/x?sig=t#frg": "https://user:xxxxx@h.example.com/x?…",
		"http://h.example.com/x?":                         "http://h.example.com/x?…",
		"http://h.example.com/#frag":                      "http://h.example.com/",
		"http://[::1]:8080/a%2Fb":                         "http://[::1]:8080/a%2Fb",
	} {
		u, err := url.Parse(address)
		if err != nil {
			t.Fatal(err)
		}
		if got := Redacted(u); got != want {
			t.Errorf("Redacted(%s) = %s, want %s", address, got, want)
		}
		if u.String() != address {
			t.Errorf("Redacted changed its URL: %s is now %s", address, u)
		}
	}
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", defaultExcerpt) + "TAIL"
	other := newReceiver(t, nil) // a redirect's target, never to be called
	tests := []struct {
		name        string
		status      int
		body        string
		header      map[string]string
		rateLimited bool
		kind        sdktest.Kind
		want        []string // substrings of the error
		absent      []string
	}{
		{"OK", 200, "fine", nil, false, sdktest.Succeeded, nil, nil},
		{"NoContent", 204, "", nil, false, sdktest.Succeeded, nil, nil},
		{"ServerErrorIsRetried", 500, long, nil, false, sdktest.Failed,
			[]string{"answered 500 Internal Server Error: " + strings.Repeat("a", defaultExcerpt) + "…"}, []string{"TAIL"}},
		{"UnavailableIsRetried", 503, "down for maintenance", nil, false, sdktest.Failed, []string{"answered 503 Service Unavailable: down for maintenance"}, nil},
		{"NotFoundIsPermanent", 404, "no such hook", nil, false, sdktest.FailedPermanently, []string{"answered 404 Not Found: no such hook"}, nil},
		{"UnauthorizedIsPermanent", 401, "", nil, false, sdktest.FailedPermanently, []string{"answered 401 Unauthorized"}, nil},
		{"TimeoutIsRetried", 408, "", nil, false, sdktest.Failed, []string{"answered 408 Request Timeout"}, nil},
		{"TooEarlyIsRetried", 425, "", nil, false, sdktest.Failed, []string{"answered 425 Too Early"}, nil},
		{"TooManyIsRetried", 429, "slow down", map[string]string{"Retry-After": "5"}, false, sdktest.Failed, []string{"answered 429 Too Many Requests: slow down"}, nil},
		{"TooManyRateLimitedSnoozes", 429, "slow down", map[string]string{"Retry-After": "5"}, true, sdktest.Snoozed,
			[]string{"answered 429 Too Many Requests: slow down (rate limited; trying again in 5s)"}, nil},
		{"RateLimitedOtherwiseTheSame", 503, "", nil, true, sdktest.Failed, []string{"answered 503 Service Unavailable"}, nil},
		{"MovedIsPermanent", 301, "", map[string]string{"Location": other.srv.URL + "/new"}, false, sdktest.FailedPermanently,
			[]string{"answered 301 Moved Permanently; redirects are not followed (Location: " + other.srv.URL + "/new)"}, nil},
		{"PermanentRedirectIsPermanent", 308, "", map[string]string{"Location": other.srv.URL + "/new"}, false, sdktest.FailedPermanently,
			[]string{"answered 308 Permanent Redirect; redirects are not followed"}, nil},
		{"FoundIsNotFollowed", 302, "", map[string]string{"Location": other.srv.URL + "/new"}, false, sdktest.Failed,
			[]string{"answered 302 Found; redirects are not followed"}, nil},
		{"LocationIsOneBoundedLine", 307, "", map[string]string{"Location": "/a   b" + strings.Repeat("x", 300)}, false, sdktest.Failed,
			[]string{"(Location: /a b" + strings.Repeat("x", 252) + ")"}, []string{strings.Repeat("x", 253)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			res := newTestPlugin(env{}).run(t, map[string]any{"payload": "{}", "address": rc.srv.URL + "/hook", "rate_limited": tc.rateLimited}, allowLoopback)
			if res.Kind != tc.kind {
				t.Fatalf("run = %s %v, want %s", res.Kind, res.Err, tc.kind)
			}
			for _, w := range tc.want {
				if res.Err == nil || !strings.Contains(res.Err.Error(), w) {
					t.Errorf("error %v lacks %q", res.Err, w)
				}
			}
			for _, a := range tc.absent {
				if res.Err != nil && strings.Contains(res.Err.Error(), a) {
					t.Errorf("error %v holds %q", res.Err, a)
				}
			}
			if res.Err != nil && !strings.Contains(res.Err.Error(), "POST "+rc.srv.URL+"/hook: answered ") {
				t.Errorf("error %v does not start with the address", res.Err)
			}
			if tc.kind == sdktest.Snoozed && res.SnoozeFor != 5*time.Second {
				t.Errorf("snoozed for %v, want the Retry-After", res.SnoozeFor)
			}
			if reqs := rc.requests(); len(reqs) != 1 || reqs[0] != "POST /hook" {
				t.Errorf("the receiver got %q, want one POST", reqs)
			}
			log := logText(res)
			if !strings.Contains(log, "INFO posting the payload address="+rc.srv.URL+"/hook bytes=2") ||
				!strings.Contains(log, "INFO answered status="+strconv.Itoa(tc.status)+" took=") {
				t.Errorf("log:\n%s", log)
			}
		})
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("a redirect was followed: its target got %d requests", n)
	}
}

func TestExcerptIsOneBoundedLineOfUTF8(t *testing.T) {
	t.Parallel()
	// 3-byte characters and line breaks: a cut at 512 bytes would split
	// a character (22 bytes, then 163 € and a third of one), and the
	// breaks, made one space each, leave room for the "\uFFFD" that the
	// split character would become.
	body := "line one\r\n\r\nline\t\ttwo\n" + strings.Repeat("€", 400)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, body)
	})
	p := newTestPlugin(env{})
	res := p.run(t, map[string]any{"payload": "{}", "address": rc.srv.URL}, allowLoopback)
	msg := res.Err.Error()
	_, excerpt, ok := strings.Cut(msg, "Bad Gateway: ")
	if res.Kind != sdktest.Failed || !ok {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	excerpt = strings.TrimSuffix(excerpt, "…")
	if len(excerpt) > defaultExcerpt || !utf8.ValidString(excerpt) || strings.ContainsAny(excerpt, "\r\n\t") ||
		strings.ContainsRune(excerpt, utf8.RuneError) || excerpt != "line one line two "+strings.Repeat("€", 163) {
		t.Fatalf("excerpt (%d bytes) %q", len(excerpt), excerpt)
	}

	// Smaller, none at all (what Harbor does now), or the whole body,
	// uncut.
	for n, ex := range map[int]string{0: "", 10: ": line one…", 4096: ": line one line two " + strings.Repeat("€", 400)} {
		res := p.run(t, map[string]any{"payload": "{}", "address": rc.srv.URL},
			map[string]any{"allowed_networks": []string{"127.0.0.0/8"}, "body_excerpt_bytes": n})
		want := "POST " + rc.srv.URL + ": answered 502 Bad Gateway" + ex
		if res.Err == nil || res.Err.Error() != want {
			t.Errorf("body_excerpt_bytes %d: error %v, want %q", n, res.Err, want)
		}
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"plain", 100, "plain"},
		{"  lead and trail \r\n", 100, "lead and trail"},
		{"a\r\n\t b\x7fc\u2028d\u2029e", 100, "a b c d e"},
		{"bad \xff byte", 100, "bad \uFFFD byte"},
		{"€€€", 7, "€€"},
		{"abc def", 4, "abc"},
	} {
		if got := clean(tc.in, tc.n); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestARefusedAddressFailsForGoodAndTellsTheOperator(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	u, _ := url.Parse(rc.srv.URL)
	// A name, so that nothing refuses it before the dial.
	address := "http://localhost:" + u.Port() + "/hook"
	p := newTestPlugin(env{})
	res := p.run(t, map[string]any{"payload": "{}", "address": address}, nil)
	if res.Kind != sdktest.FailedPermanently {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	// The error crossed the plugin's RPC: its words are what is left.
	if msg := res.Err.Error(); !strings.HasPrefix(msg, "POST "+address+" refused: ") || !strings.Contains(msg, "(loopback), a range this service does not call") {
		t.Fatalf("error %q", msg)
	}
	if strings.Contains(res.Err.Error(), "allowed_networks") {
		t.Errorf("the job's error names the setting (Harbor keeps it for the operator): %v", res.Err)
	}
	if w := p.warnings(); !strings.HasPrefix(w, "refused POST "+address+": ") || !strings.Contains(w, "(loopback)") ||
		!strings.HasSuffix(w, "; the operator may allow it with plugin_config.test.allowed_networks") {
		t.Errorf("the operator was told %q", w)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
	if res := p.run(t, map[string]any{"payload": "{}", "address": address}, allowLoopback); res.Kind != sdktest.Succeeded {
		t.Fatalf("allowed: %s %v", res.Kind, res.Err)
	}
}

func TestSkipCertVerifyTakesTheClientThatSkips(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p := newTestPlugin(env{})
	res := p.run(t, map[string]any{"payload": "{}", "address": srv.URL}, allowLoopback)
	if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "certificate") {
		t.Fatalf("verified: %s %v", res.Kind, res.Err)
	}
	res = p.run(t, map[string]any{"payload": "{}", "address": srv.URL, "skip_cert_verify": true}, allowLoopback)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("skip_cert_verify: %s %v", res.Kind, res.Err)
	}
}

func TestStopEndsAHangingPost(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		// Answer after a while if the stop never reaches the request, so
		// that the test fails instead of hanging.
		select {
		case <-r.Context().Done():
		case <-time.After(15 * time.Second):
		}
	})
	p := newTestPlugin(env{})
	r := sdktest.Start(t, p.job, map[string]any{"payload": "{}", "address": rc.srv.URL},
		p.options(map[string]any{"allowed_networks": []string{"127.0.0.0/8"}, "timeout_seconds": 0})...)
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the POST did not arrive")
	}
	start := time.Now()
	r.Stop()
	res := r.Wait()
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the job took %v to end after the stop", took)
	}
	if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "stop") {
		t.Fatalf("run after stop = %s %v", res.Kind, res.Err)
	}
}

func TestAddressSecretsStayOutOfLogsAndErrors(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	address := strings.Replace(rc.srv.URL, "http://", "http://user:pa55word@", 1) + "/hook?sig=t0ken#frag"
	res := newTestPlugin(env{}).run(t, map[string]any{"payload": "{}", "address": address}, allowLoopback)
	text := res.Err.Error() + "\n" + logText(res)
	if res.Kind != sdktest.Failed || !strings.Contains(text, "user:xxxxx@127.0.0.1") {
		t.Fatalf("run = %s:\n%s", res.Kind, text)
	}
	for _, secret := range []string{"pa55word", "t0ken", "frag"} {
		if strings.Contains(text, secret) {
			t.Errorf("%q shows:\n%s", secret, text)
		}
	}
	// Nor when the POST fails before an answer (Go's error of it names the
	// whole URL): here, a port nobody listens on.
	closed := newReceiver(t, nil)
	closed.srv.Close()
	address = strings.Replace(closed.srv.URL, "http://", "http://user:pa55word@", 1) + "/hook?sig=t0ken"
	res = newTestPlugin(env{}).run(t, map[string]any{"payload": "{}", "address": address}, allowLoopback)
	if res.Kind != sdktest.Failed || !strings.Contains(res.Err.Error(), "connection refused") || strings.Contains(res.Err.Error(), "pa55word") ||
		strings.Contains(res.Err.Error(), "t0ken") {
		t.Fatalf("run to a closed port = %s %v", res.Kind, res.Err)
	}
	// Nor in a refusal at submission.
	err := newTestPlugin(env{}).validate(t, map[string]any{"payload": "{}", "address": "http://u:pa55word@10.0.0.1/x?sig=t0ken"}, nil)
	if err == nil || strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "t0ken") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"7":                             7 * time.Second,
		" 30 ":                          30 * time.Second,
		"0":                             time.Second,
		"-5":                            time.Second,
		"999999999":                     time.Hour,
		"Tue, 02 Jan 2024 03:05:05 GMT": time.Minute,
		"Tue, 02 Jan 2024 03:00:00 GMT": time.Second,
		"Tue, 09 Jan 2024 03:04:05 GMT": time.Hour,
		"":                              30 * time.Second,
		"soon":                          30 * time.Second,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
