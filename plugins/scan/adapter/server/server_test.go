package server

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/plugins/scan/adapter/osv"
	"github.com/berth-dev/berth/plugins/scan/scanapi"
)

const (
	testKey      = "the-key"
	testUser     = "puller"
	testPassword = "s3cret"
)

// testRegistry is go-containerregistry's in-memory registry (a full
// implementation of the distribution API) behind Basic auth, with a gate
// that can hold manifest requests.
type testRegistry struct {
	srv *httptest.Server

	mu       sync.Mutex
	gate     chan struct{} // nil: open
	inFlight int
	maxIn    int
}

func newTestRegistry(t *testing.T) *testRegistry {
	r := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != testUser || p != testPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/") {
			r.mu.Lock()
			gate := r.gate
			r.inFlight++
			r.maxIn = max(r.maxIn, r.inFlight)
			r.mu.Unlock()
			defer func() { r.mu.Lock(); r.inFlight--; r.mu.Unlock() }()
			if gate != nil {
				select {
				case <-gate:
				case <-req.Context().Done():
					return
				}
			}
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *testRegistry) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = make(chan struct{})
}

func (r *testRegistry) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

func (r *testRegistry) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// push pushes an image of files (one layer) and returns its digest.
func (r *testRegistry) push(t *testing.T, repo string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host()+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword})); err != nil {
		t.Fatal(err)
	}
	return digestOf(t, img)
}

func digestOf(t *testing.T, img v1.Image) string {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// bundle is a running Server and what its tests need.
type bundle struct {
	srv  *Server
	http *httptest.Server
	reg  *testRegistry
	now  atomic.Pointer[time.Time]
}

func setup(t *testing.T, change func(*Config)) *bundle {
	t.Helper()
	db, err := osv.Load("../testdata/advisories")
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{reg: newTestRegistry(t)}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.now.Store(&start)
	cfg := Config{APIKey: testKey, DB: db, RefreshAfter: time.Second, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return *b.now.Load() }}
	if change != nil {
		change(&cfg)
	}
	b.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.http = httptest.NewServer(b.srv.Handler())
	t.Cleanup(func() {
		b.reg.release()
		b.http.Close()
		b.srv.Stop()
	})
	return b
}

// answer is an API answer.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) message() string {
	var e scanapi.ErrorResponse
	_ = json.Unmarshal(a.body, &e)
	return e.Error.Message
}

func (b *bundle) do(t *testing.T, method, path string, header map[string]string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := header["no-key"]; !ok {
		req.Header.Set(scanapi.HeaderAPIKey, testKey)
	}
	for k, v := range header {
		if k != "no-key" {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, raw}
}

const debianOS = "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"

func debianFiles() map[string]string {
	return map[string]string{
		"etc/os-release": debianOS,
		"var/lib/dpkg/status": "Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\n\n" +
			"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n",
	}
}

func (b *bundle) scanRequest(digest, authorization string) scanapi.ScanRequest {
	return scanapi.ScanRequest{
		Registry: scanapi.Registry{URL: b.reg.srv.URL, Authorization: authorization},
		Artifact: scanapi.Artifact{Repository: "library/debian", Digest: digest, MimeType: scanapi.MimeDockerManifest},
	}
}

func basic() string { return "Basic cHVsbGVyOnMzY3JldA==" } // puller:s3cret

func (b *bundle) submit(t *testing.T, req scanapi.ScanRequest) string {
	t.Helper()
	a := b.do(t, http.MethodPost, "/api/v1/scan", map[string]string{"Content-Type": scanapi.MimeScanRequest}, req)
	if a.code != http.StatusAccepted || a.header.Get("Content-Type") != scanapi.MimeScanResponse {
		t.Fatalf("POST /scan: %d %s %s", a.code, a.header.Get("Content-Type"), a.body)
	}
	var sr scanapi.ScanResponse
	if err := json.Unmarshal(a.body, &sr); err != nil || sr.ID == "" {
		t.Fatalf("scan response %s: %v", a.body, err)
	}
	return sr.ID
}

// waitReport polls a report until it is no longer 302 (at most 200 polls
// in 10 s).
func (b *bundle) waitReport(t *testing.T, id, accept, query string) answer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for range 200 {
		a := b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report"+query, map[string]string{"Accept": accept}, nil)
		if a.code != http.StatusFound {
			return a
		}
		if a.header.Get(scanapi.HeaderRefreshAfter) != "1" {
			t.Fatalf("302 with Refresh-After %q", a.header.Get(scanapi.HeaderRefreshAfter))
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("report %s of %s still not ready", accept, id)
	return answer{}
}

// waitFor polls cond (at most 500 times in 10 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for range 500 {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within 10 s", what)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"NoKey", map[string]string{"no-key": ""}, http.StatusUnauthorized},
		{"WrongKey", map[string]string{scanapi.HeaderAPIKey: "nope"}, http.StatusUnauthorized},
		{"Key", nil, http.StatusOK},
		{"Bearer", map[string]string{"no-key": "", "Authorization": "Bearer " + testKey}, http.StatusOK},
		{"WrongBearer", map[string]string{"no-key": "", "Authorization": "Bearer x"}, http.StatusUnauthorized},
		{"BasicIsNotAKey", map[string]string{"no-key": "", "Authorization": "Basic " + testKey}, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := b.do(t, http.MethodGet, "/api/v1/metadata", tc.header, nil)
			if a.code != tc.want {
				t.Fatalf("GET /metadata: %d %s, want %d", a.code, a.body, tc.want)
			}
			if tc.want == http.StatusUnauthorized && (!strings.Contains(a.message(), "unauthorized") || a.header.Get("Content-Type") != scanapi.MimeError) {
				t.Fatalf("401 body %s (%s)", a.body, a.header.Get("Content-Type"))
			}
		})
	}
	for _, p := range []string{"/probe/healthy", "/probe/ready"} {
		if a := b.do(t, http.MethodGet, p, map[string]string{"no-key": ""}, nil); a.code != http.StatusOK {
			t.Fatalf("%s: %d", p, a.code)
		}
	}
	if a := b.do(t, http.MethodGet, "/api/v1/nothing", nil, nil); a.code != http.StatusNotFound || a.message() == "" {
		t.Fatalf("unknown operation: %d %s", a.code, a.body)
	}
	if _, err := New(Config{DB: &osv.DB{}}); err == nil || !strings.Contains(err.Error(), "APIKey") {
		t.Fatalf("New without a key: %v", err)
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	a := b.do(t, http.MethodGet, "/api/v1/metadata", map[string]string{"Accept": scanapi.MimeMetadata}, nil)
	if a.code != http.StatusOK || a.header.Get("Content-Type") != scanapi.MimeMetadata11 {
		t.Fatalf("metadata: %d %s", a.code, a.header.Get("Content-Type"))
	}
	var md scanapi.Metadata
	if err := json.Unmarshal(a.body, &md); err != nil {
		t.Fatal(err)
	}
	if len(md.Capabilities) != 2 || md.Capabilities[0].Type != "vulnerability" || md.Capabilities[1].Type != "sbom" ||
		strings.Join(md.Capabilities[0].ProducesMimeTypes, ",") != scanapi.MimeVulnReport+","+scanapi.MimeNativeReport ||
		strings.Join(md.Capabilities[1].ConsumesMimeTypes, ",") != scanapi.MimeOCIManifest+","+scanapi.MimeDockerManifest {
		t.Fatalf("capabilities %+v", md.Capabilities)
	}
	if md.Properties[scanapi.PropDBUpdatedAt] != "2024-03-11T10:00:00Z" || md.Properties[scanapi.PropRegistryAuthType] != "Basic" || md.Scanner.Name == "" {
		t.Fatalf("metadata %+v", md)
	}
}

func TestScanAndReports(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	digest := b.reg.push(t, "library/debian", debianFiles())
	b.reg.hold()
	id := b.submit(t, b.scanRequest(digest, basic()))
	// Held at the registry, the scan runs: 302 with Refresh-After.
	waitFor(t, "a running scan", func() bool { return b.srv.Stats().Running == 1 })
	a := b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report", map[string]string{"Accept": scanapi.MimeVulnReport}, nil)
	if a.code != http.StatusFound || a.header.Get(scanapi.HeaderRefreshAfter) != "1" || a.header.Get("Location") != "" {
		t.Fatalf("report of a running scan: %d %v", a.code, a.header)
	}
	b.reg.release()

	a = b.waitReport(t, id, scanapi.MimeVulnReport, "")
	if a.code != http.StatusOK || a.header.Get("Content-Type") != scanapi.MimeVulnReport {
		t.Fatalf("report: %d %s %s", a.code, a.header.Get("Content-Type"), a.body)
	}
	var rep scanapi.VulnReport
	if err := json.Unmarshal(a.body, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Vulnerabilities) != 1 || rep.Severity != "High" || rep.Artifact.Digest != digest {
		t.Fatalf("report %s", a.body)
	}
	v := rep.Vulnerabilities[0]
	if v.ID != "BERTH-SAMPLE-2024-0001" || v.Package != "openssl" || v.FixVersion != "3.0.13-1~deb12u1" || v.PreferredCVSS == nil ||
		*v.PreferredCVSS.ScoreV3 != 7.5 || len(v.CweIDs) != 1 || v.VendorAttributes == nil || len(v.Links) != 1 {
		t.Fatalf("item %+v", v)
	}
	// 1.0 leaves out CVSS, CWE IDs and vendor attributes.
	a = b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report", map[string]string{"Accept": "application/vnd.scanner.adapter.vuln.report.harbor+json;version=1.0"}, nil)
	if a.code != http.StatusOK || a.header.Get("Content-Type") != scanapi.MimeNativeReport ||
		strings.Contains(string(a.body), "preferred_cvss") || strings.Contains(string(a.body), "cwe_ids") || !strings.Contains(string(a.body), `"fix_version":"3.0.13-1~deb12u1"`) {
		t.Fatalf("1.0 report: %d %s", a.code, a.body)
	}
	// SBOM: the query parameter is required, CycloneDX only.
	if a := b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report", map[string]string{"Accept": scanapi.MimeSBOMReport}, nil); a.code != http.StatusBadRequest || !strings.Contains(a.message(), "sbom_media_type") {
		t.Fatalf("SBOM without its query: %d %s", a.code, a.body)
	}
	if a := b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report?sbom_media_type=application/spdx%2Bjson", map[string]string{"Accept": scanapi.MimeSBOMReport}, nil); a.code != http.StatusBadRequest {
		t.Fatalf("SPDX: %d %s", a.code, a.body)
	}
	a = b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report?sbom_media_type=application/vnd.cyclonedx%2Bjson", map[string]string{"Accept": scanapi.MimeSBOMReport}, nil)
	if a.code != http.StatusOK || a.header.Get("Content-Type") != scanapi.MimeSBOMReport {
		t.Fatalf("SBOM: %d %s", a.code, a.body)
	}
	var sr scanapi.SBOMReport
	if err := json.Unmarshal(a.body, &sr); err != nil || sr.MediaType != scanapi.MediaTypeCycloneDX {
		t.Fatalf("SBOM report %s: %v", a.body, err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(sr.SBOM), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range *bom.Components {
		got = append(got, string(c.Type)+":"+c.Name+"@"+c.Version)
	}
	if want := "operating-system:debian@12 library:openssl@3.0.11-1~deb12u2 library:zlib1g@1:1.2.13.dfsg-1"; strings.Join(got, " ") != want {
		t.Fatalf("SBOM components %q, want %q", got, want)
	}
	if bom.Metadata.Component.Name != "library/debian" || bom.Metadata.Component.Version != digest {
		t.Fatalf("SBOM subject %+v", bom.Metadata.Component)
	}
	// What the scanner does not produce; an unknown scan.
	if a := b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report", map[string]string{"Accept": scanapi.MimeRawReport}, nil); a.code != http.StatusNotImplemented {
		t.Fatalf("raw report: %d %s", a.code, a.body)
	}
	if a := b.do(t, http.MethodGet, "/api/v1/scan/nope/report", nil, nil); a.code != http.StatusNotFound || a.message() == "" {
		t.Fatalf("unknown scan: %d %s", a.code, a.body)
	}
	// A finished scan is forgotten after the retention.
	later := b.now.Load().Add(DefaultRetention + time.Second)
	b.now.Store(&later)
	if a := b.do(t, http.MethodGet, "/api/v1/scan/"+id+"/report", nil, nil); a.code != http.StatusNotFound {
		t.Fatalf("an expired scan: %d %s", a.code, a.body)
	}
}

func TestEnabledCapabilities(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	digest := b.reg.push(t, "library/debian", debianFiles())
	req := b.scanRequest(digest, basic())
	req.EnabledCapabilities = []scanapi.EnabledCapability{{Type: "sbom", Parameters: map[string]any{"sbom_media_types": []any{scanapi.MediaTypeCycloneDX}}}}
	id := b.submit(t, req)
	if a := b.waitReport(t, id, scanapi.MimeVulnReport, ""); a.code != http.StatusBadRequest || !strings.Contains(a.message(), "did not enable the vulnerability capability") {
		t.Fatalf("a capability not enabled: %d %s", a.code, a.body)
	}
	if a := b.waitReport(t, id, scanapi.MimeSBOMReport, "?sbom_media_type=application/vnd.cyclonedx%2Bjson"); a.code != http.StatusOK {
		t.Fatalf("SBOM: %d %s", a.code, a.body)
	}
}

func TestScanRequestErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	good := func(change func(*scanapi.ScanRequest)) scanapi.ScanRequest {
		r := b.scanRequest("sha256:"+strings.Repeat("a", 64), "")
		change(&r)
		return r
	}
	tests := []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"NotJSON", "{", http.StatusBadRequest, "not a scan request"},
		{"NoRegistryURL", good(func(r *scanapi.ScanRequest) { r.Registry.URL = "" }), http.StatusUnprocessableEntity, "registry.url is required"},
		{"FTPRegistry", good(func(r *scanapi.ScanRequest) { r.Registry.URL = "ftp://r" }), http.StatusUnprocessableEntity, "registry.url must be an http or https URL"},
		{"NoRepository", good(func(r *scanapi.ScanRequest) { r.Artifact.Repository = "" }), http.StatusUnprocessableEntity, "artifact.repository is required"},
		{"NoDigest", good(func(r *scanapi.ScanRequest) { r.Artifact.Digest = "" }), http.StatusUnprocessableEntity, "artifact.digest is required"},
		{"BadDigest", good(func(r *scanapi.ScanRequest) { r.Artifact.Digest = "latest" }), http.StatusUnprocessableEntity, "artifact.digest must be a digest"},
		{"BadAuthorization", good(func(r *scanapi.ScanRequest) { r.Registry.Authorization = "Digest x" }), http.StatusUnprocessableEntity, "Basic or Bearer"},
		{"HelmChart", good(func(r *scanapi.ScanRequest) { r.Artifact.MimeType = "application/vnd.cncf.helm.config.v1+json" }), http.StatusNotImplemented, "does not scan artifacts of type"},
		{"UnknownCapability", good(func(r *scanapi.ScanRequest) { r.EnabledCapabilities = []scanapi.EnabledCapability{{Type: "malware"}} }), http.StatusUnprocessableEntity, "enabled_capabilities[0].type"},
		{"SPDX", good(func(r *scanapi.ScanRequest) {
			r.EnabledCapabilities = []scanapi.EnabledCapability{{Type: "sbom", Parameters: map[string]any{"sbom_media_types": []string{scanapi.MediaTypeSPDX}}}}
		}), http.StatusNotImplemented, "cyclonedx+json only"},
		{"RawReport", good(func(r *scanapi.ScanRequest) {
			r.EnabledCapabilities = []scanapi.EnabledCapability{{Type: "vulnerability", ProducesMimeTypes: []string{scanapi.MimeRawReport}}}
		}), http.StatusNotImplemented, "does not produce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := b.do(t, http.MethodPost, "/api/v1/scan", nil, tc.body)
			if a.code != tc.code || !strings.Contains(a.message(), tc.msg) {
				t.Fatalf("POST /scan: %d %s, want %d with %q", a.code, a.body, tc.code, tc.msg)
			}
		})
	}
}

func TestPullFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	digest := b.reg.push(t, "library/debian", debianFiles())
	tests := []struct {
		name, digest, authorization, msg string
	}{
		{"WrongCredentials", digest, "Basic bm9ib2R5Om5vbmU=", "the registry answered 401"},
		{"NoCredentials", digest, "", "the registry answered 401"},
		{"Missing", "sha256:" + strings.Repeat("b", 64), basic(), "cannot pull library/debian@sha256:bbbb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := b.submit(t, b.scanRequest(tc.digest, tc.authorization))
			a := b.waitReport(t, id, scanapi.MimeVulnReport, "")
			if a.code != http.StatusInternalServerError || !strings.Contains(a.message(), tc.msg) {
				t.Fatalf("report of a scan that cannot pull: %d %s, want 500 with %q", a.code, a.body, tc.msg)
			}
		})
	}
	// An image without os-release: a clear error too.
	noOS := b.reg.push(t, "library/debian", map[string]string{"var/lib/dpkg/status": ""})
	id := b.submit(t, b.scanRequest(noOS, basic()))
	if a := b.waitReport(t, id, scanapi.MimeVulnReport, ""); a.code != http.StatusInternalServerError || !strings.Contains(a.message(), "os-release") {
		t.Fatalf("no OS: %d %s", a.code, a.body)
	}
}

func TestConcurrencyIsLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxScans = 2 })
	digest := b.reg.push(t, "library/debian", debianFiles())
	b.reg.hold()
	var ids []string
	for range 5 {
		ids = append(ids, b.submit(t, b.scanRequest(digest, basic())))
	}
	waitFor(t, "two pulls held at the registry", func() bool {
		b.reg.mu.Lock()
		defer b.reg.mu.Unlock()
		return b.reg.inFlight == 2
	})
	if st := b.srv.Stats(); st.Running != 2 {
		t.Fatalf("%d scans running, want 2", st.Running)
	}
	b.reg.release()
	for _, id := range ids {
		if a := b.waitReport(t, id, scanapi.MimeVulnReport, ""); a.code != http.StatusOK {
			t.Fatalf("report %s: %d %s", id, a.code, a.body)
		}
	}
	b.reg.mu.Lock()
	maxIn := b.reg.maxIn
	b.reg.mu.Unlock()
	if st := b.srv.Stats(); st.MaxRunning != 2 || maxIn > 2 {
		t.Fatalf("at most %d scans ran at once (%d pulls), want 2", st.MaxRunning, maxIn)
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxScans, c.Queue = 1, 1 })
	digest := b.reg.push(t, "library/debian", debianFiles())
	b.reg.hold()
	b.submit(t, b.scanRequest(digest, basic()))
	waitFor(t, "a running scan", func() bool { return b.srv.Stats().Running == 1 })
	b.submit(t, b.scanRequest(digest, basic())) // waits in the queue
	a := b.do(t, http.MethodPost, "/api/v1/scan", nil, b.scanRequest(digest, basic()))
	if a.code != http.StatusServiceUnavailable || !strings.Contains(a.message(), "queue is full") {
		t.Fatalf("a third scan: %d %s", a.code, a.body)
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.srv.Start(context.Background()); err == nil {
		t.Fatal("a second Start succeeded")
	}
	b.srv.Stop()
	b.srv.Stop()
	s, err := New(Config{APIKey: "k", DB: &osv.DB{}})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop() // before Start
}
