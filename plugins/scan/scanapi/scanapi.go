package scanapi

import (
	"encoding/json"
	"mime"
	"sort"
	"strings"
)

// MIME types of artifacts a scanner consumes.
const (
	MimeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MimeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// MIME types of reports.
const (
	// MimeVulnReport is the Harbor vulnerability report of API 1.1 and
	// later, with CVSS, CWE IDs and vendor attributes per item.
	MimeVulnReport = "application/vnd.security.vulnerability.report; version=1.1"
	// MimeNativeReport is the older Harbor vulnerability report (1.0).
	MimeNativeReport = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	// MimeRawReport is a scanner's own report, of no fixed schema.
	MimeRawReport = "application/vnd.scanner.adapter.vuln.report.raw"
	// MimeSBOMReport is a software bill of materials, wrapped in
	// SBOMReport; the query parameter sbom_media_type picks its format.
	MimeSBOMReport = "application/vnd.security.sbom.report+json; version=1.0"
)

// MIME types of the API's own messages.
const (
	MimeMetadata    = "application/vnd.scanner.adapter.metadata+json; version=1.0"
	MimeMetadata11  = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	MimeScanRequest = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
	// MimeScanRequest11 is the scan request of API 1.2, which may carry
	// enabled_capabilities (the body's schema is the same).
	MimeScanRequest11 = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	MimeScanResponse  = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	MimeError         = "application/vnd.scanner.adapter.error+json; version=1.0"
)

// SBOM formats (the sbom_media_type query parameter, SBOMReport's media_type).
const (
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
	MediaTypeSPDX      = "application/spdx+json"
)

// Capability types.
const (
	CapabilityVulnerability = "vulnerability"
	CapabilitySBOM          = "sbom"
)

// Headers and query parameters.
const (
	// HeaderAPIKey carries an adapter's API key; Harbor core also spells
	// the registration's auth type so.
	HeaderAPIKey = "X-ScannerAdapter-API-Key"
	// HeaderRefreshAfter is the seconds to wait before asking for a
	// report again (with a 302).
	HeaderRefreshAfter = "Refresh-After"
	// QuerySBOMMediaType picks the SBOM format of a report request.
	QuerySBOMMediaType = "sbom_media_type"
	// AttrSBOMMediaTypes lists, in an sbom capability's
	// additional_attributes and an enabled capability's parameters, the
	// SBOM formats.
	AttrSBOMMediaTypes = "sbom_media_types"
)

// Metadata properties.
const (
	PropScannerType      = "harbor.scanner-adapter/scanner-type"
	PropDBUpdatedAt      = "harbor.scanner-adapter/vulnerability-database-updated-at"
	PropRegistryAuthType = "harbor.scanner-adapter/registry-authorization-type"
)

// Scanner names a scanner.
type Scanner struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
}

// Capability is what a scanner makes of which artifacts.
type Capability struct {
	// Type is "vulnerability" or "sbom"; absent means vulnerability.
	Type              string         `json:"type,omitempty"`
	ConsumesMimeTypes []string       `json:"consumes_mime_types"`
	ProducesMimeTypes []string       `json:"produces_mime_types"`
	Additional        map[string]any `json:"additional_attributes,omitempty"`
}

// Metadata is the answer of GET /metadata.
type Metadata struct {
	Scanner      Scanner           `json:"scanner"`
	Capabilities []Capability      `json:"capabilities"`
	Properties   map[string]string `json:"properties,omitempty"`
}

// Registry says where and how the scanner pulls the artifact.
type Registry struct {
	URL string `json:"url"`
	// Authorization is the value of the Authorization header of requests
	// to the registry ("Basic <base64>", "Bearer <token>"), or empty.
	Authorization string `json:"authorization"`
}

// Artifact is the artifact to scan.
type Artifact struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type,omitempty"`
}

// EnabledCapability narrows what a scan request asks for.
type EnabledCapability struct {
	Type              string         `json:"type"`
	ProducesMimeTypes []string       `json:"produces_mime_types,omitempty"`
	Parameters        map[string]any `json:"parameters,omitempty"`
}

// ScanRequest is the body of POST /scan.
type ScanRequest struct {
	Registry            Registry            `json:"registry"`
	Artifact            Artifact            `json:"artifact"`
	EnabledCapabilities []EnabledCapability `json:"enabled_capabilities,omitempty"`
}

// ScanResponse is the answer of POST /scan.
type ScanResponse struct {
	ID string `json:"id"`
}

// ErrorResponse is the body of an error answer.
type ErrorResponse struct {
	Error ErrorMessage `json:"error"`
}

// ErrorMessage is the error of an ErrorResponse.
type ErrorMessage struct {
	Message string `json:"message"`
}

// VulnReport is a Harbor vulnerability report (both versions; the 1.0
// report leaves out an item's CVSS, CWE IDs and vendor attributes).
type VulnReport struct {
	GeneratedAt string   `json:"generated_at"`
	Artifact    Artifact `json:"artifact"`
	Scanner     Scanner  `json:"scanner"`
	// Severity is the highest of the items'; absent when there are none.
	Severity        string     `json:"severity,omitempty"`
	Vulnerabilities []VulnItem `json:"vulnerabilities"`
}

// VulnItem is one vulnerability of one package.
type VulnItem struct {
	ID               string         `json:"id"`
	Package          string         `json:"package"`
	Version          string         `json:"version"`
	FixVersion       string         `json:"fix_version,omitempty"`
	Severity         string         `json:"severity"`
	Description      string         `json:"description,omitempty"`
	Links            []string       `json:"links,omitempty"`
	PreferredCVSS    *CVSS          `json:"preferred_cvss,omitempty"`
	CweIDs           []string       `json:"cwe_ids,omitempty"`
	VendorAttributes map[string]any `json:"vendor_attributes,omitempty"`
}

// CVSS is an item's preferred CVSS score.
type CVSS struct {
	ScoreV3  *float64 `json:"score_v3,omitempty"`
	ScoreV2  *float64 `json:"score_v2,omitempty"`
	VectorV3 string   `json:"vector_v3,omitempty"`
	VectorV2 string   `json:"vector_v2,omitempty"`
}

// SBOMReport wraps an SBOM document.
type SBOMReport struct {
	GeneratedAt      string          `json:"generated_at"`
	Artifact         Artifact        `json:"artifact"`
	Scanner          Scanner         `json:"scanner"`
	VendorAttributes map[string]any  `json:"vendor_attributes,omitempty"`
	MediaType        string          `json:"media_type"`
	SBOM             json.RawMessage `json:"sbom"`
}

// Severities of the spec's scale.
const (
	SeverityUnknown    = "Unknown"
	SeverityNegligible = "Negligible"
	SeverityLow        = "Low"
	SeverityMedium     = "Medium"
	SeverityHigh       = "High"
	SeverityCritical   = "Critical"
)

// Severities returns the spec's severities, lowest first.
func Severities() []string {
	return []string{SeverityUnknown, SeverityNegligible, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
}

// SeverityRank orders severities: 0 for Unknown (and anything else) up
// to 5 for Critical.
func SeverityRank(s string) int {
	for i, v := range Severities() {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return 0
}

// Severity returns the spec's spelling of s ("high" is "High"), and
// Unknown for a word not of the scale.
func Severity(s string) string { return Severities()[SeverityRank(s)] }

// SameMIME says whether two MIME types are the same type with the same
// parameters, whatever their case and spacing ("a/b; version=1.0" and
// "A/B;version=1.0").
func SameMIME(a, b string) bool {
	return NormalMIME(a) == NormalMIME(b)
}

// NormalMIME is a MIME type in one spelling: lower case, parameters
// sorted, "; " between them. A value that does not parse is trimmed and
// lower-cased.
func NormalMIME(s string) string {
	t, params, err := mime.ParseMediaType(s)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(s))
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(t)
	for _, k := range keys {
		b.WriteString("; " + k + "=" + params[k])
	}
	return b.String()
}
