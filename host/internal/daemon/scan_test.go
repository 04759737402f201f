package daemon_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/host/internal/testkit/registrytest"
)

// The tests of this file run the IMAGE_SCAN plugin (plugins/scan) through
// a real host against the real scanner adapter (bin/scanner, built from
// plugins/scan/adapter) pulling from a real docker-registry with Basic
// auth; a loopback stand-in of an adapter plays only what the real one
// cannot be made to do (hold a report at 302 forever, answer 500).

const (
	scanWait = 30 * time.Second
	// scanAPIKey is the key the test adapters are started with.
	scanAPIKey = "scan-test-key"
)

// Report MIME types.
const (
	scanMimeVuln11 = "application/vnd.security.vulnerability.report; version=1.1"
	scanMimeVuln10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	scanMimeSBOM   = "application/vnd.security.sbom.report+json; version=1.0"
)

func scanAdapterBinary(t *testing.T) string { return plugintest.Command(t, "plugins/scan/adapter") }

// scanAdapter is a running bin/scanner.
type scanAdapter struct {
	url string
	log *procs.Buffer
}

// scanStartAdapter starts the real adapter on a free loopback port with
// the sample advisories, and waits for its health endpoint. A port taken
// between choosing and binding makes the adapter exit: another is tried.
func scanStartAdapter(t *testing.T) *scanAdapter {
	t.Helper()
	bin := scanAdapterBinary(t)
	advisories := filepath.Join(plugintest.ModuleRoot(), "plugins", "scan", "adapter", "testdata", "advisories")
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		a := &scanAdapter{url: "http://" + addr, log: &procs.Buffer{}}
		cmd := exec.Command(bin, "-addr", addr, "-advisories", advisories, "-refresh-after", "1s")
		// The key comes from the env, as the flags' variables promise.
		cmd.Env = append(os.Environ(), "BERTH_SCANNER_API_KEY="+scanAPIKey)
		cmd.Stdout, cmd.Stderr = a.log, a.log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if scanHealthy(a.url, exited) {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("scanner adapter log:\n%s", a.log.String())
				}
			})
			return a
		}
		stop()
		t.Logf("the adapter did not come up on %s (trying another port):\n%s", addr, a.log.String())
	}
	t.Fatal("the scanner adapter did not start")
	return nil
}

// scanHealthy polls the adapter's health endpoint until it answers 200,
// the adapter exits, or 15 seconds pass.
func scanHealthy(base string, exited <-chan struct{}) bool {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := client.Get(base + "/probe/healthy"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// scanHost starts a host with the IMAGE_SCAN plugin, allowed to call
// loopback adapters.
func scanHost(t *testing.T) *hosttest.Host {
	t.Helper()
	return hosttest.NewCluster(t, "scan").Start(t, func(c *config.Config) {
		c.PluginConfig = map[string]map[string]any{"scan": {"allowed_networks": []any{"127.0.0.0/8"}}}
	})
}

// scanOutput is the IMAGE_SCAN job's output.
type scanOutput struct {
	ScanRequestID string `json:"scan_request_id"`
	Reports       []struct {
		Digest           string          `json:"digest"`
		RegistrationUUID string          `json:"registration_uuid"`
		MimeType         string          `json:"mime_type"`
		Report           json.RawMessage `json:"report"`
	} `json:"reports"`
	Summary struct {
		Total      int            `json:"total"`
		Fixable    int            `json:"fixable"`
		BySeverity map[string]int `json:"by_severity"`
		Components *int           `json:"components"`
	} `json:"summary"`
}

type scanVulnReport struct {
	Severity        string `json:"severity"`
	Vulnerabilities []struct {
		ID            string `json:"id"`
		Package       string `json:"package"`
		Version       string `json:"version"`
		FixVersion    string `json:"fix_version"`
		Severity      string `json:"severity"`
		PreferredCVSS *struct {
			ScoreV3 *float64 `json:"score_v3"`
		} `json:"preferred_cvss"`
	} `json:"vulnerabilities"`
}

func (o *scanOutput) report(t *testing.T, mimeType string, v any) {
	t.Helper()
	for _, r := range o.Reports {
		if r.MimeType == mimeType {
			if err := json.Unmarshal(r.Report, v); err != nil {
				t.Fatalf("report %s: %v\n%s", mimeType, err, r.Report)
			}
			return
		}
	}
	t.Fatalf("the output has no report %s", mimeType)
}

// scanWaitFor waits until the job ends and expects status want, showing
// the job's log when it ends otherwise.
func scanWaitFor(t *testing.T, h *hosttest.Host, id string, want job.Status) *job.Stats {
	t.Helper()
	st := h.Wait(t, id, scanWait, "a final status", func(s *job.Stats) bool {
		return s.Status == job.Success || s.Status == job.Error || s.Status == job.Stopped
	})
	if st.Status != want {
		t.Fatalf("job %s ended %s, want %s; log:\n%s", id, st.Status, want, h.LogText(t, id))
	}
	return st
}

func scanDecodeOutput(t *testing.T, st *job.Stats) *scanOutput {
	t.Helper()
	var out scanOutput
	if err := json.Unmarshal(st.Output, &out); err != nil {
		t.Fatalf("output: %v\n%s", err, st.Output)
	}
	return &out
}

// scanParams are the parameters of a scan of repo@digest in reg through
// the adapter at adapterURL with the API key key. The registration goes as
// a JSON string, as Harbor's core sends it; the scan request as an object.
func scanParams(t *testing.T, adapterURL, auth, key, registryURL, authorization, repo, digest, mimeType string, mimes ...string) map[string]any {
	t.Helper()
	reg, err := json.Marshal(map[string]any{"uuid": "reg-uuid-1", "name": "berth-offline", "url": adapterURL,
		"auth": auth, "access_credential": key, "skip_certVerify": false, "disabled": false, "is_default": true})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"registration": string(reg),
		"scanRequest": map[string]any{
			"registry": map[string]any{"url": registryURL, "authorization": authorization},
			"artifact": map[string]any{"repository": repo, "digest": digest, "tag": "v1", "mime_type": mimeType},
		},
		"mimeTypes": mimes,
	}
}

func scanBasic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// scanDebianImage: one vulnerable package (openssl), one fixed (zlib1g,
// whose source zlib is fixed in the installed version), one without
// advisory, and one removed package that must not be listed.
func scanDebianImage(t *testing.T) map[string]string {
	return map[string]string{
		"var/lib/dpkg/status": "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\nDescription: Debian base system\n miscellaneous files\n\n" +
			"Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\n\n" +
			"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n" +
			"Package: libgone1\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0-1\n",
	}
}

// TestScanWithTheRealAdapter drives real scans: host, plugin, adapter
// binary, registry.
func TestScanWithTheRealAdapter(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	adapter := scanStartAdapter(t)
	h := scanHost(t)
	creds := scanBasic(reg.Username(), reg.Password())

	debian := registrytest.ImageWithFiles(t,
		map[string]string{"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"},
		scanDebianImage(t))
	debianDigest := reg.Push(t, "library/debian:v1", debian)
	mt, err := debian.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	alpine := registrytest.ImageWithFiles(t, map[string]string{
		"etc/os-release": "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
		"lib/apk/db/installed": "C:Q1aaaa=\nP:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\n\n" +
			"C:Q1bbbb=\nP:sqlite-libs\nV:3.45.0_rc1-r0\nA:x86_64\no:sqlite\n\n" +
			"C:Q1cccc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\n",
	})
	alpineDigest := reg.Push(t, "library/alpine:v1", alpine)

	t.Run("FlagsExactlyTheVulnerablePackage", func(t *testing.T) {
		t.Parallel()
		hook := newReceiver(t)
		st := submitWithHook(t, h, "IMAGE_SCAN", scanParams(t, adapter.url, "X-ScannerAdapter-API-Key", scanAPIKey, reg.URL(), creds,
			"library/debian", debianDigest, string(mt), scanMimeVuln11, scanMimeSBOM), hook.url("/hook"))
		done := scanWaitFor(t, h, st.ID, job.Success)
		out := scanDecodeOutput(t, done)
		var vr scanVulnReport
		out.report(t, scanMimeVuln11, &vr)
		if len(vr.Vulnerabilities) != 1 {
			t.Fatalf("the report flags %d vulnerabilities, want exactly openssl's: %+v", len(vr.Vulnerabilities), vr.Vulnerabilities)
		}
		v := vr.Vulnerabilities[0]
		if v.ID != "BERTH-SAMPLE-2024-0001" || v.Package != "openssl" || v.Version != "3.0.11-1~deb12u2" ||
			v.FixVersion != "3.0.13-1~deb12u1" || v.Severity != "High" || vr.Severity != "High" {
			t.Fatalf("the finding %+v (report severity %q)", v, vr.Severity)
		}
		if v.PreferredCVSS == nil || v.PreferredCVSS.ScoreV3 == nil || *v.PreferredCVSS.ScoreV3 != 7.5 {
			t.Fatalf("the 1.1 report's CVSS %+v, want score 7.5", v.PreferredCVSS)
		}
		// The SBOM lists every installed package and the OS, not the
		// removed one.
		var sb struct {
			MediaType string `json:"media_type"`
			SBOM      struct {
				BOMFormat  string `json:"bomFormat"`
				Components []struct {
					Type, Name, Version, Purl string
				} `json:"components"`
			} `json:"sbom"`
		}
		out.report(t, scanMimeSBOM, &sb)
		var names []string
		for _, c := range sb.SBOM.Components {
			names = append(names, c.Name+"@"+c.Version)
		}
		want := "debian@12 base-files@12.4+deb12u5 openssl@3.0.11-1~deb12u2 zlib1g@1:1.2.13.dfsg-1"
		if sb.MediaType != "application/vnd.cyclonedx+json" || sb.SBOM.BOMFormat != "CycloneDX" || strings.Join(names, " ") != want {
			t.Fatalf("SBOM %s %s lists %q, want %q", sb.MediaType, sb.SBOM.BOMFormat, names, want)
		}
		if out.Summary.Total != 1 || out.Summary.Fixable != 1 || out.Summary.BySeverity["High"] != 1 ||
			out.Summary.Components == nil || *out.Summary.Components != 4 || out.Reports[0].Digest != debianDigest ||
			out.Reports[0].RegistrationUUID != "reg-uuid-1" || out.ScanRequestID == "" {
			t.Fatalf("output summary %+v, reports %d", out.Summary, len(out.Reports))
		}
		summary := "scan done: 1 vulnerability (Critical 0, High 1, Medium 0, Low 0, Negligible 0, Unknown 0), 1 fixable; SBOM of 4 components"
		if done.CheckIn != summary {
			t.Fatalf("last check-in %q, want %q", done.CheckIn, summary)
		}
		// The status hook got the check-ins, and the reports with the final status.
		hook.waitFor(t, st.ID, "Success", scanWait)
		events := hook.eventsFor(st.ID)
		var checkIns []string
		for _, e := range events {
			if e.CheckIn != "" {
				checkIns = append(checkIns, e.CheckIn)
			}
		}
		last := events[len(events)-1]
		if len(checkIns) == 0 || checkIns[0] != "scan request accepted" || checkIns[len(checkIns)-1] != summary ||
			last.Status != "Success" || last.Metadata == nil || string(last.Metadata.Output) != string(done.Output) {
			t.Fatalf("the hook got the check-ins %q and last %+v", checkIns, last)
		}
		log := h.LogText(t, st.ID)
		for _, line := range []string{"scan request accepted", "report " + scanMimeVuln11 + " received", "report " + scanMimeSBOM + " received", summary} {
			if !strings.Contains(log, line) {
				t.Fatalf("the job log lacks %q:\n%s", line, log)
			}
		}
		// The adapter took the API key (it refuses a call without) and
		// pulled with the registry's Basic credentials: the registry
		// (auth on) served the manifest.
		if !strings.Contains(adapter.log.String(), "registry_authorization=Basic") {
			t.Fatalf("the adapter did not get Basic registry credentials:\n%s", adapter.log.String())
		}
		if reg.Count("GET", "/v2/library/debian/manifests/"+debianDigest) == 0 {
			t.Fatalf("the registry served no manifest: %v", reg.Requests())
		}
		served := false
		for _, r := range reg.Requests() {
			if r.Method == "GET" && strings.Contains(r.Path, "/v2/library/debian/manifests/") && r.Status == http.StatusOK {
				served = true
			}
		}
		if !served {
			t.Fatalf("the registry never answered 200 to a manifest request: %v", reg.Requests())
		}
	})

	t.Run("AlpineIsMatchedInApkOrder", func(t *testing.T) {
		t.Parallel()
		p := scanParams(t, adapter.url, "APIKey", scanAPIKey, reg.URL(), creds, "library/alpine", alpineDigest, string(mt), scanMimeVuln10)
		// The scan request as Harbor's core sends it: a JSON string.
		raw, err := json.Marshal(p["scanRequest"])
		if err != nil {
			t.Fatal(err)
		}
		p["scanRequest"] = string(raw)
		st := h.Submit(t, "IMAGE_SCAN", p, nil)
		out := scanDecodeOutput(t, scanWaitFor(t, h, st.ID, job.Success))
		var vr scanVulnReport
		out.report(t, scanMimeVuln10, &vr)
		// busybox 1.36.1-r15 is after the fix 1.36.1-r7 in apk's order;
		// sqlite's 3.45.0_rc1-r0 is before the fix 3.45.0-r0.
		if len(vr.Vulnerabilities) != 1 {
			t.Fatalf("the report flags %+v, want sqlite-libs only", vr.Vulnerabilities)
		}
		v := vr.Vulnerabilities[0]
		if v.ID != "BERTH-SAMPLE-2024-0102" || v.Package != "sqlite-libs" || v.Version != "3.45.0_rc1-r0" || v.FixVersion != "3.45.0-r0" ||
			v.Severity != "Medium" || v.PreferredCVSS != nil {
			t.Fatalf("the finding %+v (a 1.0 report carries no CVSS)", v)
		}
	})

	t.Run("WrongAPIKeyFailsNamingAuth", func(t *testing.T) {
		t.Parallel()
		st := h.Submit(t, "IMAGE_SCAN", scanParams(t, adapter.url, "X-ScannerAdapter-API-Key", "not-the-key", reg.URL(), creds,
			"library/debian", debianDigest, string(mt), scanMimeVuln11), nil)
		scanWaitFor(t, h, st.ID, job.Error)
		log := h.LogText(t, st.ID)
		if !strings.Contains(log, "answered 401 Unauthorized") || !strings.Contains(log, `auth "X-ScannerAdapter-API-Key"`) ||
			!strings.Contains(log, "wrong API key") {
			t.Fatalf("log:\n%s", log)
		}
	})

	t.Run("AnImageThatCannotBePulledFails", func(t *testing.T) {
		t.Parallel()
		missing := "sha256:" + strings.Repeat("ab", 32)
		st := h.Submit(t, "IMAGE_SCAN", scanParams(t, adapter.url, "X-ScannerAdapter-API-Key", scanAPIKey, reg.URL(), creds,
			"library/debian", missing, string(mt), scanMimeVuln11), nil)
		scanWaitFor(t, h, st.ID, job.Error)
		log := h.LogText(t, st.ID)
		if !strings.Contains(log, "answered 500 Internal Server Error: cannot pull library/debian@"+missing) {
			t.Fatalf("log:\n%s", log)
		}
		// Wrong registry credentials: the registry's refusal is named.
		st = h.Submit(t, "IMAGE_SCAN", scanParams(t, adapter.url, "X-ScannerAdapter-API-Key", scanAPIKey, reg.URL(), scanBasic(reg.Username(), "wrong"),
			"library/debian", debianDigest, string(mt), scanMimeVuln11), nil)
		scanWaitFor(t, h, st.ID, job.Error)
		if log := h.LogText(t, st.ID); !strings.Contains(log, "the registry answered 401") {
			t.Fatalf("log:\n%s", log)
		}
	})
}

// scanStandIn is a loopback stand-in of an adapter whose report answers
// with report; it counts the scan requests it got.
type scanStandIn struct {
	srv *httptest.Server

	mu    sync.Mutex
	scans int
}

func scanNewStandIn(t *testing.T, report func(w http.ResponseWriter)) *scanStandIn {
	s := &scanStandIn{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-ScannerAdapter-API-Key") != scanAPIKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/metadata":
			w.Header().Set("Content-Type", "application/vnd.scanner.adapter.metadata+json; version=1.0")
			_, _ = io.WriteString(w, `{"scanner":{"name":"stand-in","vendor":"test","version":"0"},"capabilities":[{"consumes_mime_types":["application/vnd.docker.distribution.manifest.v2+json"],"produces_mime_types":["`+scanMimeVuln11+`"]}]}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/scan":
			s.mu.Lock()
			s.scans++
			s.mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"id":"held-1"}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/scan/held-1/report":
			report(w)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scanStandIn) scanRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scans
}

func scanStandInParams(t *testing.T, url string) map[string]any {
	return scanParams(t, url, "X-ScannerAdapter-API-Key", scanAPIKey, "https://registry.example.com", "", "library/x",
		"sha256:"+strings.Repeat("0", 64), "application/vnd.docker.distribution.manifest.v2+json", scanMimeVuln11)
}

// TestScanStandIns: what only a stand-in adapter can show.
func TestScanStandIns(t *testing.T) {
	t.Parallel()
	h := scanHost(t)

	t.Run("StopEndsAPollHeldAt302WithinASecond", func(t *testing.T) {
		t.Parallel()
		s := scanNewStandIn(t, func(w http.ResponseWriter) {
			w.Header().Set("Refresh-After", "30")
			w.WriteHeader(http.StatusFound)
		})
		st := h.Submit(t, "IMAGE_SCAN", scanStandInParams(t, s.srv.URL), nil)
		h.WaitCheckin(t, st.ID, "not ready, retry after 30s", scanWait)
		start := time.Now()
		if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
			t.Fatalf("stop: %d %s", r.Status, r.Body)
		}
		h.WaitStatus(t, st.ID, job.Stopped, 2*time.Second)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("the job stopped %s after the stop, want within a second", took)
		}
	})

	t.Run("TimeoutSecondsEndsTheJobInError", func(t *testing.T) {
		t.Parallel()
		s := scanNewStandIn(t, func(w http.ResponseWriter) {
			w.Header().Set("Refresh-After", "1")
			w.WriteHeader(http.StatusFound)
		})
		p := scanStandInParams(t, s.srv.URL)
		p["timeout_seconds"] = 2
		start := time.Now()
		st := h.Submit(t, "IMAGE_SCAN", p, nil)
		scanWaitFor(t, h, st.ID, job.Error)
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("a 2 s timeout took %s", took)
		}
		log := h.LogText(t, st.ID)
		if !strings.Contains(log, "the report "+scanMimeVuln11+" timed out") || !strings.Contains(log, "not ready, retry after 1s") {
			t.Fatalf("log:\n%s", log)
		}
	})

	t.Run("AnAdapterErrorEndsTheJobWithItsMessageNotRetried", func(t *testing.T) {
		t.Parallel()
		s := scanNewStandIn(t, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/vnd.scanner.adapter.error+json; version=1.0")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":{"message":"the vulnerability database is locked"}}`)
		})
		st := h.Submit(t, "IMAGE_SCAN", scanStandInParams(t, s.srv.URL), nil)
		scanWaitFor(t, h, st.ID, job.Error)
		log := h.LogText(t, st.ID)
		if !strings.Contains(log, "answered 500 Internal Server Error: the vulnerability database is locked") ||
			!strings.Contains(log, "the failure is permanent") || strings.Contains(log, "attempt 2") {
			t.Fatalf("log:\n%s", log)
		}
		if n := s.scanRequests(); n != 1 {
			t.Fatalf("the adapter got %d scan requests, want 1 (no retry)", n)
		}
	})
}

// TestScanValidateThroughTheAPI: a bad submission is a 400 that names the
// parameter.
func TestScanValidateThroughTheAPI(t *testing.T) {
	t.Parallel()
	h := scanHost(t)
	good := func() map[string]any {
		return scanParams(t, "http://127.0.0.1:8090", "X-ScannerAdapter-API-Key", "k", "https://registry.example.com", "", "library/a",
			"sha256:"+strings.Repeat("1", 64), "application/vnd.oci.image.manifest.v1+json", scanMimeVuln11)
	}
	with := func(change func(p map[string]any)) map[string]any { p := good(); change(p); return p }
	registration := func(fields map[string]any) func(map[string]any) {
		return func(p map[string]any) {
			r := map[string]any{"url": "http://127.0.0.1:8090", "auth": "X-ScannerAdapter-API-Key", "access_credential": "k"}
			for k, v := range fields {
				r[k] = v
			}
			p["registration"] = r
		}
	}
	artifact := func(fields map[string]any) func(map[string]any) {
		return func(p map[string]any) {
			a := map[string]any{"repository": "library/a", "digest": "sha256:" + strings.Repeat("1", 64)}
			for k, v := range fields {
				a[k] = v
			}
			p["scanRequest"] = map[string]any{"registry": map[string]any{"url": "https://registry.example.com"}, "artifact": a}
		}
	}
	tests := []struct {
		name   string
		params map[string]any
		want   string // in the 400's body; "" is accepted
	}{
		{"Good", good(), ""},
		{"RegistrationObject", with(registration(nil)), ""},
		{"NoRegistration", with(func(p map[string]any) { delete(p, "registration") }), `parameter \"registration\" is required`},
		{"NoScanRequest", with(func(p map[string]any) { delete(p, "scanRequest") }), `parameter \"scanRequest\" is required`},
		{"NoMimeTypes", with(func(p map[string]any) { delete(p, "mimeTypes") }), `parameter \"mimeTypes\" is required`},
		{"EmptyMimeTypes", with(func(p map[string]any) { p["mimeTypes"] = []string{} }), `parameter \"mimeTypes\" must hold at least 1 items`},
		{"RegistrationNotJSON", with(func(p map[string]any) { p["registration"] = "{url:" }), `parameter \"registration\" is not valid JSON`},
		{"FTPAdapter", with(registration(map[string]any{"url": "ftp://127.0.0.1/"})), `parameter \"registration.url\" must be an http or https URL`},
		{"FTPRegistry", with(func(p map[string]any) {
			p["scanRequest"] = map[string]any{"registry": map[string]any{"url": "ftp://r.example.com"}, "artifact": map[string]any{"repository": "a", "digest": "sha256:00"}}
		}), `parameter \"scanRequest.registry.url\" must be an http or https URL`},
		{"UnknownAuth", with(registration(map[string]any{"auth": "Digest"})), `parameter \"registration.auth\" must be`},
		{"NoCredential", with(registration(map[string]any{"auth": "Basic", "access_credential": ""})), `parameter \"registration.access_credential\" is required for auth type \"Basic\"`},
		{"NoRepository", with(artifact(map[string]any{"repository": ""})), `parameter \"scanRequest.artifact.repository\" is required`},
		{"NoDigest", with(artifact(map[string]any{"digest": ""})), `parameter \"scanRequest.artifact.digest\" is required`},
		{"BadDigest", with(artifact(map[string]any{"digest": "latest"})), `parameter \"scanRequest.artifact.digest\" must be a digest`},
		{"RefusedAdapter", with(registration(map[string]any{"url": "http://10.1.2.3:8080"})), `parameter \"registration.url\" (http://10.1.2.3:8080) is refused`},
		{"TimeoutTooLong", with(func(p map[string]any) { p["timeout_seconds"] = 100000 }), `parameter \"timeout_seconds\" must be`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("IMAGE_SCAN", tc.params, map[string]any{"kind": "Scheduled", "schedule_delay": 3600}))
			if tc.want == "" {
				if r.Status != http.StatusAccepted {
					t.Fatalf("submit: %d %s", r.Status, r.Body)
				}
				if a := h.Action(t, r.Stats(t).ID, "stop"); a.Status != http.StatusNoContent {
					t.Fatalf("stop: %d %s", a.Status, a.Body)
				}
				return
			}
			if r.Status != http.StatusBadRequest || !bytes.Contains(r.Body, []byte(tc.want)) {
				t.Fatalf("submit: %d %s, want 400 with %s", r.Status, r.Body, tc.want)
			}
		})
	}
}
