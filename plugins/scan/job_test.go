package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/plugins/scan/adapter/osv"
	"github.com/berth-dev/berth/plugins/scan/adapter/server"
	"github.com/berth-dev/berth/plugins/scan/scanapi"
	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/sdktest"
)

// allowLoopback lets the job call the tests' loopback adapters.
var allowLoopback = map[string]any{"allowed_networks": []string{"127.0.0.0/8"}}

func plugin() (sdk.Job, sdk.Option) { return newPlugin(&holder{}) }

func run(t *testing.T, params map[string]any, settings map[string]any, opts ...sdktest.Option) sdktest.Result {
	t.Helper()
	return start(t, params, settings, opts...).Wait()
}

func start(t *testing.T, params map[string]any, settings map[string]any, opts ...sdktest.Option) *sdktest.Running {
	t.Helper()
	job, config := plugin()
	if settings == nil {
		settings = allowLoopback
	}
	return sdktest.Start(t, job, params, append([]sdktest.Option{sdktest.WithPlugin(config), sdktest.WithConfig(settings)}, opts...)...)
}

const (
	digest0 = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	mimeDoc = scanapi.MimeDockerManifest
)

// params are a scan's parameters; registration as a JSON string (as
// Harbor sends it), the scan request as an object.
func params(adapterURL string, reg map[string]any, mimes ...string) map[string]any {
	r := map[string]any{"uuid": "u-1", "name": "test", "url": adapterURL, "auth": "X-ScannerAdapter-API-Key", "access_credential": "the-key"}
	for k, v := range reg {
		r[k] = v
	}
	raw, _ := json.Marshal(r)
	if len(mimes) == 0 {
		mimes = []string{scanapi.MimeVulnReport}
	}
	return map[string]any{
		"registration": string(raw),
		"scanRequest": map[string]any{
			"registry": map[string]any{"url": "https://registry.example.com", "authorization": "Basic eDp5"},
			"artifact": map[string]any{"repository": "library/a", "digest": digest0, "tag": "v1", "mime_type": mimeDoc},
		},
		"mimeTypes": mimes,
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := params("https://scanner.example.com", nil)
	with := func(change func(p map[string]any)) map[string]any {
		p := params("https://scanner.example.com", nil)
		change(p)
		return p
	}
	reg := func(fields map[string]any) map[string]any { return params("https://scanner.example.com", fields) }
	artifact := func(fields map[string]any) map[string]any {
		a := map[string]any{"repository": "library/a", "digest": digest0}
		for k, v := range fields {
			a[k] = v
		}
		return with(func(p map[string]any) {
			p["scanRequest"] = map[string]any{"registry": map[string]any{"url": "https://r.example.com"}, "artifact": a}
		})
	}
	tests := []struct {
		name     string
		params   map[string]any
		settings map[string]any
		wantErr  string // substring; "" means valid
	}{
		{"Harbors", ok, nil, ""},
		{"ScanRequestAsString", with(func(p map[string]any) {
			raw, _ := json.Marshal(p["scanRequest"])
			p["scanRequest"] = string(raw)
		}), nil, ""},
		{"RegistrationObject", with(func(p map[string]any) { p["registration"] = map[string]any{"url": "http://s.example.com"} }), nil, ""},
		{"NoAuth", reg(map[string]any{"auth": "", "access_credential": ""}), nil, ""},
		{"APIKeySpelling", reg(map[string]any{"auth": "APIKey"}), nil, ""},
		{"BasicAuth", reg(map[string]any{"auth": "Basic", "access_credential": "u:p"}), nil, ""},
		{"BearerAuth", reg(map[string]any{"auth": "Bearer"}), nil, ""},
		{"HarborSkipCertVerify", reg(map[string]any{"skip_certVerify": true, "disabled": false, "create_time": "2024-01-01T00:00:00Z"}), nil, ""},
		{"Timeout", with(func(p map[string]any) { p["timeout_seconds"] = 60 }), nil, ""},
		{"Robot", with(func(p map[string]any) {
			p["robotAccount"] = `{"name":"robot$scan","secret":"s"}`
			p["authType"] = "Bearer"
		}), nil, ""},
		{"NoParams", nil, nil, `parameter "mimeTypes" is required`},
		{"NoRegistration", with(func(p map[string]any) { delete(p, "registration") }), nil, `parameter "registration" is required`},
		{"NoScanRequest", with(func(p map[string]any) { delete(p, "scanRequest") }), nil, `parameter "scanRequest" is required`},
		{"NoMimeTypes", with(func(p map[string]any) { delete(p, "mimeTypes") }), nil, `parameter "mimeTypes" is required`},
		{"EmptyMimeTypes", with(func(p map[string]any) { p["mimeTypes"] = []string{} }), nil, `parameter "mimeTypes" must hold at least 1 items`},
		{"BadMimeType", with(func(p map[string]any) { p["mimeTypes"] = []string{scanapi.MimeVulnReport, "not a type;;"} }), nil, `parameter "mimeTypes[1]" must be a MIME type`},
		{"RepeatedMimeType", with(func(p map[string]any) { p["mimeTypes"] = []string{scanapi.MimeVulnReport, scanapi.MimeVulnReport} }), nil, `parameter "mimeTypes[1]" repeats`},
		{"RegistrationNumber", with(func(p map[string]any) { p["registration"] = 7 }), nil, `parameter "registration"`},
		{"RegistrationNotJSON", with(func(p map[string]any) { p["registration"] = "{url" }), nil, `parameter "registration" is not valid JSON`},
		{"RegistrationList", with(func(p map[string]any) { p["registration"] = "[1]" }), nil, `parameter "registration" must be a JSON object`},
		{"RegistrationURLType", with(func(p map[string]any) { p["registration"] = map[string]any{"url": 5} }), nil, `parameter "registration.url" must be string`},
		{"NoURL", reg(map[string]any{"url": ""}), nil, `parameter "registration.url" is required`},
		{"FTPURL", reg(map[string]any{"url": "ftp://s.example.com"}), nil, `parameter "registration.url" must be an http or https URL, got one with scheme "ftp"`},
		{"NoScheme", reg(map[string]any{"url": "s.example.com:8080"}), nil, `parameter "registration.url" must be an http or https URL`},
		{"NoHost", reg(map[string]any{"url": "http:///x"}), nil, `parameter "registration.url" must be an http or https URL with a host`},
		{"Loopback", reg(map[string]any{"url": "http://127.0.0.1:8090"}), map[string]any{}, `parameter "registration.url" (http://127.0.0.1:8090) is refused: 127.0.0.1 is in 127.0.0.0/8 (loopback)`},
		{"LoopbackAllowed", reg(map[string]any{"url": "http://127.0.0.1:8090"}), allowLoopback, ""},
		{"Metadata", reg(map[string]any{"url": "http://169.254.169.254/"}), allowLoopback, `169.254.169.254 is in 169.254.0.0/16`},
		{"UnknownAuth", reg(map[string]any{"auth": "Digest"}), nil, `parameter "registration.auth" must be "", "Basic", "Bearer" or "X-ScannerAdapter-API-Key" (also spelled "APIKey"), got "Digest"`},
		{"NoCredential", reg(map[string]any{"auth": "Bearer", "access_credential": ""}), nil, `parameter "registration.access_credential" is required for auth type "Bearer"`},
		{"CredentialLineBreak", reg(map[string]any{"access_credential": "a\nb"}), nil, `parameter "registration.access_credential" must not hold a line break`},
		{"NoRegistryURL", with(func(p map[string]any) {
			p["scanRequest"] = map[string]any{"artifact": map[string]any{"repository": "a", "digest": digest0}}
		}), nil,
			`parameter "scanRequest.registry.url" is required`},
		{"FTPRegistry", with(func(p map[string]any) {
			p["scanRequest"] = map[string]any{"registry": map[string]any{"url": "ftp://r"}, "artifact": map[string]any{"repository": "a", "digest": digest0}}
		}), nil, `parameter "scanRequest.registry.url" must be an http or https URL`},
		{"NoRepository", artifact(map[string]any{"repository": " "}), nil, `parameter "scanRequest.artifact.repository" is required`},
		{"NoDigest", artifact(map[string]any{"digest": ""}), nil, `parameter "scanRequest.artifact.digest" is required`},
		{"BadDigest", artifact(map[string]any{"digest": "v1"}), nil, `parameter "scanRequest.artifact.digest" must be a digest such as sha256:<hex>, got "v1"`},
		{"BadArtifactMime", artifact(map[string]any{"mime_type": "x;;"}), nil, `parameter "scanRequest.artifact.mime_type" must be a MIME type`},
		{"CapabilityWithoutType", with(func(p map[string]any) {
			p["scanRequest"] = map[string]any{"registry": map[string]any{"url": "https://r"}, "artifact": map[string]any{"repository": "a", "digest": digest0},
				"enabled_capabilities": []any{map[string]any{"produces_mime_types": []string{"x/y"}}}}
		}), nil, `parameter "scanRequest.enabled_capabilities[0].type" is required`},
		{"TimeoutZero", with(func(p map[string]any) { p["timeout_seconds"] = 0 }), nil, `parameter "timeout_seconds" must be a whole number from 1 to 86400`},
		{"TimeoutNegative", with(func(p map[string]any) { p["timeout_seconds"] = -1 }), nil, `parameter "timeout_seconds" must be`},
		{"TimeoutTooLong", with(func(p map[string]any) { p["timeout_seconds"] = 86401 }), nil, `parameter "timeout_seconds" must be`},
		{"RobotWithoutSecret", with(func(p map[string]any) { p["robotAccount"] = map[string]any{"name": "r"} }), nil, `parameter "robotAccount" must have a name and a secret`},
		{"BadAuthType", with(func(p map[string]any) { p["authType"] = "Digest" }), nil, `parameter "authType" must be one of`},
		{"Unknown", with(func(p map[string]any) { p["extra"] = 1 }), nil, `unknown parameter "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job, config := plugin()
			opts := []sdktest.Option{sdktest.WithPlugin(config)}
			if tc.settings != nil {
				opts = append(opts, sdktest.WithConfig(tc.settings))
			}
			err := sdktest.Validate(t, job, tc.params, opts...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	zero := 0
	for _, tc := range []struct {
		settings Settings
		want     string
	}{
		{Settings{AllowedNetworks: []string{"127.0.0.0/8", "10.0.0.0/33"}}, `setting "allowed_networks[1]" must be a network`},
		{Settings{RequestTimeoutSeconds: &zero}, `setting "request_timeout_seconds" must be at least 1`},
		{Settings{MaxRefreshSeconds: &zero}, `setting "max_refresh_after_seconds" must be at least 1`},
	} {
		if err := (&holder{}).Configure(tc.settings); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%+v) = %v, want an error with %s", tc.settings, err, tc.want)
		}
	}
	h := &holder{}
	if c := h.load(); c.maxRefresh != defaultMaxRefresh || c.clients[0].Timeout != defaultRequestTimeout {
		t.Fatalf("defaults before Configure: %+v", c)
	}
}

// realAdapter is Berth's adapter (package server) in-process, over
// go-containerregistry's in-memory registry behind Basic auth.
type realAdapter struct {
	url, registry string
	digest        string
}

func startRealAdapter(t *testing.T) *realAdapter {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "puller" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="t"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(rs.Close)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, body := range map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\n",
		"var/lib/dpkg/status": "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n",
	} {
		_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(rs.URL, "http://")+"/library/debian:12", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "puller", Password: "pw"})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	db, err := osv.Load("adapter/testdata/advisories")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{APIKey: "the-key", DB: db, RefreshAfter: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Stop() })
	return &realAdapter{url: hs.URL, registry: rs.URL, digest: d.String()}
}

func TestScanWithTheAdapter(t *testing.T) {
	t.Parallel()
	a := startRealAdapter(t)
	p := params(a.url, nil, scanapi.MimeVulnReport, scanapi.MimeSBOMReport)
	p["scanRequest"] = map[string]any{
		"registry": map[string]any{"url": a.registry},
		"artifact": map[string]any{"repository": "library/debian", "digest": a.digest, "mime_type": mimeDoc},
	}
	// The robot's Basic credentials stand in for the missing authorization.
	p["robotAccount"] = `{"name":"puller","secret":"pw"}`
	p["authType"] = "Basic"
	res := run(t, p, nil)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v\nlogs %v", res.Kind, res.Err, res.Logs)
	}
	var out Output
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Reports) != 2 || out.Reports[0].MimeType != scanapi.MimeVulnReport || out.Reports[1].MimeType != scanapi.MimeSBOMReport ||
		out.Scanner.Name != "Berth offline scanner" || out.Registration.UUID != "u-1" || out.ScanRequestID == "" {
		t.Fatalf("output %s", res.Output)
	}
	var vr scanapi.VulnReport
	if err := json.Unmarshal(out.Reports[0].Report, &vr); err != nil || len(vr.Vulnerabilities) != 1 || vr.Vulnerabilities[0].Package != "openssl" {
		t.Fatalf("vulnerability report %s: %v", out.Reports[0].Report, err)
	}
	if s := out.Summary; s == nil || s.Total == nil || *s.Total != 1 || s.Fixable != 1 || s.BySeverity["High"] != 1 || s.Severity != "High" || s.Components == nil || *s.Components != 3 {
		t.Fatalf("summary %+v", out.Summary)
	}
	ci := res.CheckIns
	want := "scan done: 1 vulnerability (Critical 0, High 1, Medium 0, Low 0, Negligible 0, Unknown 0), 1 fixable; SBOM of 3 components"
	if len(ci) < 4 || ci[0] != "scan request accepted" || ci[len(ci)-1] != want ||
		!contains(ci, "report "+scanapi.MimeVulnReport+" received") || !contains(ci, "report "+scanapi.MimeSBOMReport+" received") {
		t.Fatalf("check-ins %q", ci)
	}
	for _, m := range ci {
		if m != "scan request accepted" && m != want && !strings.HasPrefix(m, "report ") && m != "not ready, retry after 1s" {
			t.Fatalf("unexpected check-in %q", m)
		}
	}
	if !logged(res, want) || !logged(res, "scan request accepted") {
		t.Fatalf("the log lacks the check-ins: %v", res.Logs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func logged(res sdktest.Result, s string) bool {
	for _, l := range res.Logs {
		if strings.Contains(l.Message, s) {
			return true
		}
	}
	return false
}

// standIn is a loopback stand-in of an adapter: metadata consuming
// Docker manifests and producing the 1.1 report, scan accepted as
// "s-1", and the report answered by report. It records requests.
type standIn struct {
	srv      *httptest.Server
	metadata func(w http.ResponseWriter)
	report   func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

const standInMetadata = `{"scanner":{"name":"stand-in","vendor":"t","version":"1"},"capabilities":[{"consumes_mime_types":["` + mimeDoc + `"],"produces_mime_types":["` + scanapi.MimeVulnReport + `"]}]}`

func newStandIn(t *testing.T, report func(w http.ResponseWriter, r *http.Request)) *standIn {
	s := &standIn{report: report}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.body = append(s.body, string(b))
		md := s.metadata
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/metadata":
			if md != nil {
				md(w)
				return
			}
			_, _ = io.WriteString(w, standInMetadata)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/scan":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"id":"s-1"}`)
		case r.URL.Path == "/api/v1/scan/s-1/report":
			s.report(w, r)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) requests() ([]*http.Request, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...), append([]string(nil), s.body...)
}

func okReport(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", scanapi.MimeVulnReport)
	_, _ = io.WriteString(w, `{"generated_at":"2024-01-01T00:00:00Z","vulnerabilities":[{"id":"X","package":"p","version":"1","severity":"Low"}]}`)
}

// The adapter's auth is Harbor's: Basic of the credential, Bearer, or the
// API key header; the calls say what they send and accept.
func TestAuthAndHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		auth, cred, header, want string
	}{
		{"Basic", "user:pass", "Authorization", "Basic dXNlcjpwYXNz"},
		{"Bearer", "tok", "Authorization", "Bearer tok"},
		{"X-ScannerAdapter-API-Key", "k1", "X-ScannerAdapter-API-Key", "k1"},
		{"APIKey", "k2", "X-ScannerAdapter-API-Key", "k2"},
		{"", "", "Authorization", ""},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t, okReport)
			res := run(t, params(s.srv.URL, map[string]any{"auth": tc.auth, "access_credential": tc.cred}), nil)
			if res.Kind != sdktest.Succeeded {
				t.Fatalf("run = %s %v", res.Kind, res.Err)
			}
			reqs, bodies := s.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want metadata, scan, report", len(reqs))
			}
			for _, r := range reqs {
				if got := r.Header.Get(tc.header); got != tc.want {
					t.Fatalf("%s %s: %s = %q, want %q", r.Method, r.URL.Path, tc.header, got, tc.want)
				}
			}
			if !strings.Contains(reqs[0].Header.Get("Accept"), scanapi.MimeMetadata) ||
				reqs[1].Header.Get("Content-Type") != scanapi.MimeScanRequest || reqs[1].Header.Get("Accept") != scanapi.MimeScanResponse ||
				reqs[2].Header.Get("Accept") != scanapi.MimeVulnReport {
				t.Fatalf("headers %v / %v / %v", reqs[0].Header, reqs[1].Header, reqs[2].Header)
			}
			var sr scanapi.ScanRequest
			if err := json.Unmarshal([]byte(bodies[1]), &sr); err != nil || sr.Registry.Authorization != "Basic eDp5" || sr.Artifact.Digest != digest0 {
				t.Fatalf("scan request %s: %v", bodies[1], err)
			}
		})
	}
}

func TestStopAndCancelEndThePollAtOnce(t *testing.T) {
	t.Parallel()
	for _, cancel := range []bool{false, true} {
		t.Run(fmt.Sprint("cancel=", cancel), func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Refresh-After", "30")
				w.WriteHeader(http.StatusFound)
			})
			r := start(t, params(s.srv.URL, nil), nil)
			ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
			defer done()
			if err := r.WaitCheckin(ctx, "not ready, retry after 30s"); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			if cancel {
				r.Cancel()
			} else {
				r.Stop()
			}
			res := r.Wait()
			if took := time.Since(begin); took > time.Second {
				t.Fatalf("the run ended %s after the stop", took)
			}
			if res.Kind == sdktest.Succeeded || res.Output != nil {
				t.Fatalf("a stopped run: %s %s", res.Kind, res.Output)
			}
		})
	}
}

func TestTimeoutSeconds(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Refresh-After", "1")
		w.WriteHeader(http.StatusFound)
	})
	p := params(s.srv.URL, nil)
	p["timeout_seconds"] = 2
	begin := time.Now()
	res := run(t, p, nil)
	if res.Kind != sdktest.FailedPermanently || !strings.Contains(res.Err.Error(), "the report "+scanapi.MimeVulnReport+" timed out") {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if took := time.Since(begin); took < 2*time.Second || took > 5*time.Second {
		t.Fatalf("a 2 s timeout took %s", took)
	}
	// Refresh-After is cut to max_refresh_after_seconds, and the
	// deadline cuts any wait short.
	s2 := newStandIn(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Refresh-After", "3600")
		w.WriteHeader(http.StatusFound)
	})
	p = params(s2.srv.URL, nil)
	p["timeout_seconds"] = 1
	res = run(t, p, map[string]any{"allowed_networks": []string{"127.0.0.0/8"}, "max_refresh_after_seconds": 120})
	if res.Kind != sdktest.FailedPermanently || !contains(res.CheckIns, "not ready, retry after 120s") || !strings.Contains(res.Err.Error(), "timed out") {
		t.Fatalf("run = %s %v %q", res.Kind, res.Err, res.CheckIns)
	}
}

func TestAdapterErrors(t *testing.T) {
	t.Parallel()
	errBody := func(code int, msg string) func(w http.ResponseWriter, _ *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", scanapi.MimeError)
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, `{"error":{"message":%q}}`, msg)
		}
	}
	tests := []struct {
		name     string
		metadata func(w http.ResponseWriter)
		report   func(w http.ResponseWriter, r *http.Request)
		mimes    []string
		want     string
	}{
		{"Report500", nil, errBody(500, "database locked"), nil, "answered 500 Internal Server Error: database locked"},
		{"Report404", nil, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }, nil, "answered 404 Not Found"},
		{"Report401", nil, errBody(401, "bad key"), nil, `answered 401 Unauthorized: bad key (the adapter refused the registration's auth "X-ScannerAdapter-API-Key"`},
		{"ReportNotJSON", nil, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>") }, nil, "is not JSON"},
		{"Redirect", nil, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://example.com/", http.StatusMovedPermanently)
		}, nil, "redirects are not followed"},
		{"MetadataNotJSON", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "nope") }, okReport, nil, "is not the scanner's metadata"},
		{"MetadataError", func(w http.ResponseWriter) { errBody(503, "starting")(w, nil) }, okReport, nil, "GET http://127.0.0.1"},
		{"ArtifactNotConsumed", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"scanner":{"name":"helm-only"},"capabilities":[{"consumes_mime_types":["application/vnd.cncf.helm.config.v1+json"],"produces_mime_types":["x"]}]}`)
		}, okReport, nil, `the scanner helm-only does not scan artifacts of type "` + mimeDoc + `"`},
		{"ReportNotProduced", nil, okReport, []string{scanapi.MimeSBOMReport}, `the scanner stand-in does not produce reports of type "` + scanapi.MimeSBOMReport + `" (it produces ` + scanapi.MimeVulnReport + `)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStandIn(t, tc.report)
			s.metadata = tc.metadata
			res := run(t, params(s.srv.URL, nil, tc.mimes...), nil)
			if res.Kind != sdktest.FailedPermanently || !strings.Contains(res.Err.Error(), tc.want) {
				t.Fatalf("run = %s %v, want a permanent error with %q", res.Kind, res.Err, tc.want)
			}
			if !logged(res, tc.want) {
				t.Fatalf("the log lacks the error: %v", res.Logs)
			}
		})
	}
}

func TestScanRefused(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, okReport)
	u, _ := url.Parse(s.srv.URL)
	// A name, not an IP: refused when dialled, since loopback is not allowed.
	res := run(t, params("http://localhost:"+u.Port(), nil), map[string]any{})
	if res.Kind != sdktest.FailedPermanently || !strings.Contains(res.Err.Error(), "refused") || !strings.Contains(res.Err.Error(), "allowed_networks") {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	s := newStandIn(t, okReport)
	s.metadata = func(w http.ResponseWriter) { time.Sleep(3 * time.Second) }
	begin := time.Now()
	res := run(t, params(s.srv.URL, nil), map[string]any{"allowed_networks": []string{"127.0.0.0/8"}, "request_timeout_seconds": 1})
	if res.Kind == sdktest.Succeeded || !strings.Contains(res.Err.Error(), "Timeout") || time.Since(begin) > 2900*time.Millisecond {
		t.Fatalf("run = %s %v after %s", res.Kind, res.Err, time.Since(begin))
	}
}

func TestLargeReportsLeaveTheOutput(t *testing.T) {
	t.Parallel()
	big := `{"vulnerabilities":[` + strings.Repeat(`{"id":"X","package":"p","version":"1","severity":"Low","description":"`+strings.Repeat("d", 1000)+`"},`, 1500)
	big = strings.TrimSuffix(big, ",") + `]}`
	s := newStandIn(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) })
	res := run(t, params(s.srv.URL, nil), nil)
	if res.Kind != sdktest.Succeeded || len(res.Output) > 1<<20 {
		t.Fatalf("run = %s %v, output %d bytes", res.Kind, res.Err, len(res.Output))
	}
	var out Output
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Reports[0].Report != nil || !strings.Contains(out.Reports[0].Omitted, "does not fit") || out.Summary.Total == nil || *out.Summary.Total != 1500 || out.Summary.BySeverity["Low"] != 1500 {
		t.Fatalf("output %.300s", res.Output)
	}
}

// A scan for the SBOM alone sums up the SBOM alone.
func TestSBOMOnly(t *testing.T) {
	t.Parallel()
	a := startRealAdapter(t)
	p := params(a.url, nil, scanapi.MimeSBOMReport)
	p["scanRequest"] = map[string]any{
		"registry":             map[string]any{"url": a.registry, "authorization": "Basic cHVsbGVyOnB3"},
		"artifact":             map[string]any{"repository": "library/debian", "digest": a.digest},
		"enabled_capabilities": []any{map[string]any{"type": "sbom", "parameters": map[string]any{"sbom_media_types": []string{scanapi.MediaTypeCycloneDX}}}},
	}
	res := run(t, p, nil)
	if res.Kind != sdktest.Succeeded {
		t.Fatalf("run = %s %v", res.Kind, res.Err)
	}
	if last := res.CheckIns[len(res.CheckIns)-1]; last != "scan done: SBOM of 3 components" {
		t.Fatalf("last check-in %q", last)
	}
	var out Output
	if err := json.Unmarshal(res.Output, &out); err != nil || out.Summary.Total != nil || out.Summary.BySeverity != nil {
		t.Fatalf("output %s: %v", res.Output, err)
	}
}
