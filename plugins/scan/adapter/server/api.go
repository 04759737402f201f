package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/plugins/scan/scanapi"
)

// maxRequest bounds a scan request's body.
const maxRequest = 1 << 20

// consumes are the artifact types the scanner reads.
func consumes() []string { return []string{scanapi.MimeOCIManifest, scanapi.MimeDockerManifest} }

// vulnReports are the vulnerability report types, newest first.
func vulnReports() []string { return []string{scanapi.MimeVulnReport, scanapi.MimeNativeReport} }

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	updated := s.cfg.DB.UpdatedAt()
	if updated.IsZero() {
		updated = s.cfg.Now()
	}
	md := scanapi.Metadata{
		Scanner: s.scanner,
		Capabilities: []scanapi.Capability{
			{Type: scanapi.CapabilityVulnerability, ConsumesMimeTypes: consumes(), ProducesMimeTypes: vulnReports()},
			{Type: scanapi.CapabilitySBOM, ConsumesMimeTypes: consumes(), ProducesMimeTypes: []string{scanapi.MimeSBOMReport},
				Additional: map[string]any{scanapi.AttrSBOMMediaTypes: []string{scanapi.MediaTypeCycloneDX}}},
		},
		Properties: map[string]string{
			scanapi.PropScannerType:            "os-package-vulnerability",
			scanapi.PropDBUpdatedAt:            updated.UTC().Format(time.RFC3339),
			scanapi.PropRegistryAuthType:       "Basic",
			"berth.scanner-adapter/advisories": strconv.Itoa(s.cfg.DB.Len()),
		},
	}
	s.send(w, http.StatusOK, scanapi.MimeMetadata11, md)
}

// digestRE is an OCI digest: algorithm ":" encoded.
var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

func (s *Server) accept(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "read the scan request: "+err.Error())
		return
	}
	if len(body) > maxRequest {
		s.fail(w, http.StatusBadRequest, fmt.Sprintf("the scan request is larger than %d bytes", maxRequest))
		return
	}
	var req scanapi.ScanRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, http.StatusBadRequest, "the body is not a scan request: "+err.Error())
		return
	}
	if code, msg := s.check(req); code != 0 {
		s.fail(w, code, msg)
		return
	}
	sc := &scan{id: newID(), req: req, accepted: s.cfg.Now()}
	if !s.enqueue(sc) {
		s.fail(w, http.StatusServiceUnavailable, fmt.Sprintf("the scan queue is full (%d waiting); try again later", s.cfg.Queue))
		return
	}
	scheme, _, _ := strings.Cut(req.Registry.Authorization, " ")
	s.cfg.Logger.Info("scan accepted", "scan", sc.id, "registry", req.Registry.URL, "artifact", req.Artifact.Repository+"@"+req.Artifact.Digest,
		"registry_authorization", orNone(scheme))
	s.send(w, http.StatusAccepted, scanapi.MimeScanResponse, scanapi.ScanResponse{ID: sc.id})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// check says what is wrong with a scan request: 422 for an invalid field,
// 501 for what the scanner cannot do, 0 for nothing.
func (s *Server) check(req scanapi.ScanRequest) (int, string) {
	u, err := url.Parse(req.Registry.URL)
	switch {
	case req.Registry.URL == "":
		return http.StatusUnprocessableEntity, "registry.url is required"
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return http.StatusUnprocessableEntity, fmt.Sprintf("registry.url must be an http or https URL, got %q", req.Registry.URL)
	case req.Artifact.Repository == "":
		return http.StatusUnprocessableEntity, "artifact.repository is required"
	case req.Artifact.Digest == "":
		return http.StatusUnprocessableEntity, "artifact.digest is required"
	case !digestRE.MatchString(req.Artifact.Digest):
		return http.StatusUnprocessableEntity, fmt.Sprintf("artifact.digest must be a digest such as sha256:<hex>, got %q", req.Artifact.Digest)
	}
	if a := req.Registry.Authorization; a != "" {
		scheme, _, _ := strings.Cut(a, " ")
		if !strings.EqualFold(scheme, "Basic") && !strings.EqualFold(scheme, "Bearer") {
			return http.StatusUnprocessableEntity, fmt.Sprintf("registry.authorization must be Basic or Bearer, got %q", scheme)
		}
	}
	if mt := req.Artifact.MimeType; mt != "" && !containsMIME(consumes(), mt) {
		return http.StatusNotImplemented, fmt.Sprintf("the scanner does not scan artifacts of type %q (it scans %s)", mt, strings.Join(consumes(), ", "))
	}
	for i, c := range req.EnabledCapabilities {
		var produces []string
		switch c.Type {
		case scanapi.CapabilityVulnerability:
			produces = vulnReports()
		case scanapi.CapabilitySBOM:
			produces = []string{scanapi.MimeSBOMReport}
			for _, m := range stringList(c.Parameters[scanapi.AttrSBOMMediaTypes]) {
				if m != scanapi.MediaTypeCycloneDX {
					return http.StatusNotImplemented, fmt.Sprintf("enabled_capabilities[%d]: the scanner makes SBOMs as %s only, not %q", i, scanapi.MediaTypeCycloneDX, m)
				}
			}
		default:
			return http.StatusUnprocessableEntity, fmt.Sprintf("enabled_capabilities[%d].type must be vulnerability or sbom, got %q", i, c.Type)
		}
		for _, m := range c.ProducesMimeTypes {
			if !containsMIME(produces, m) {
				return http.StatusNotImplemented, fmt.Sprintf("enabled_capabilities[%d]: the scanner does not produce %q for %s", i, m, c.Type)
			}
		}
	}
	return 0, ""
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
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

// enabled says whether the scan request enabled a capability type
// (without enabled_capabilities, every one is).
func enabled(req scanapi.ScanRequest, typ, mimeType string) bool {
	if len(req.EnabledCapabilities) == 0 {
		return true
	}
	for _, c := range req.EnabledCapabilities {
		if c.Type == typ && (len(c.ProducesMimeTypes) == 0 || containsMIME(c.ProducesMimeTypes, mimeType)) {
			return true
		}
	}
	return false
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sc, st, res, err := s.lookup(id)
	switch {
	case sc == nil:
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no scan %q (unknown, or its report expired)", id))
		return
	case st == queued || st == running:
		w.Header().Set(scanapi.HeaderRefreshAfter, strconv.Itoa(int(s.cfg.RefreshAfter/time.Second)))
		w.WriteHeader(http.StatusFound)
		return
	case st == failed:
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	want := accepted(r.Header.Get("Accept"))
	for _, m := range want {
		switch {
		case containsMIME(vulnReports(), m):
			if !enabled(sc.req, scanapi.CapabilityVulnerability, m) {
				s.fail(w, http.StatusBadRequest, fmt.Sprintf("scan %s did not enable the vulnerability capability for %q", id, m))
				return
			}
			s.send(w, http.StatusOK, canonical(vulnReports(), m), s.vulnReport(sc, res, !scanapi.SameMIME(m, scanapi.MimeNativeReport)))
			return
		case scanapi.SameMIME(m, scanapi.MimeSBOMReport):
			if !enabled(sc.req, scanapi.CapabilitySBOM, m) {
				s.fail(w, http.StatusBadRequest, fmt.Sprintf("scan %s did not enable the sbom capability", id))
				return
			}
			format := r.URL.Query().Get(scanapi.QuerySBOMMediaType)
			switch format {
			case "":
				s.fail(w, http.StatusBadRequest, fmt.Sprintf("an SBOM report needs the query parameter %s=%s", scanapi.QuerySBOMMediaType, scanapi.MediaTypeCycloneDX))
				return
			case scanapi.MediaTypeCycloneDX:
			default:
				s.fail(w, http.StatusBadRequest, fmt.Sprintf("%s must be %s (the only SBOM format of this scanner), got %q", scanapi.QuerySBOMMediaType, scanapi.MediaTypeCycloneDX, format))
				return
			}
			rep, err := s.sbomReport(sc, res)
			if err != nil {
				s.fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			s.send(w, http.StatusOK, scanapi.MimeSBOMReport, rep)
			return
		}
	}
	s.fail(w, http.StatusNotImplemented, fmt.Sprintf("the scanner does not produce %q (it produces %s, %s)", r.Header.Get("Accept"),
		strings.Join(vulnReports(), ", "), scanapi.MimeSBOMReport))
}

// accepted lists the types of an Accept header; none, or */*, is the
// vulnerability report 1.1.
func accepted(h string) []string {
	var out []string
	for _, part := range splitAccept(h) {
		if p := strings.TrimSpace(part); p != "" {
			if p == "*/*" || strings.HasPrefix(p, "*/*;") {
				p = scanapi.MimeVulnReport
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{scanapi.MimeVulnReport}
	}
	return out
}

// splitAccept splits an Accept header at the commas between types (a
// report type's parameters hold none).
func splitAccept(h string) []string { return strings.Split(h, ",") }

// canonical is the spelling of m in list.
func canonical(list []string, m string) string {
	for _, x := range list {
		if scanapi.SameMIME(x, m) {
			return x
		}
	}
	return m
}

func (s *Server) send(w http.ResponseWriter, code int, contentType string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, "encode the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_, _ = w.Write(raw)
}

// fail answers the spec's error body.
func (s *Server) fail(w http.ResponseWriter, code int, msg string) {
	raw, _ := json.Marshal(scanapi.ErrorResponse{Error: scanapi.ErrorMessage{Message: msg}})
	w.Header().Set("Content-Type", scanapi.MimeError)
	w.WriteHeader(code)
	_, _ = w.Write(raw)
}
