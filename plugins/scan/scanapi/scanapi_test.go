package scanapi

import (
	"encoding/json"
	"testing"
)

func TestSameMIME(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{MimeVulnReport, "application/vnd.security.vulnerability.report;version=1.1", true},
		{MimeVulnReport, "Application/Vnd.Security.Vulnerability.Report; Version=1.1", true},
		{MimeVulnReport, MimeNativeReport, false},
		{MimeVulnReport, "application/vnd.security.vulnerability.report; version=1.0", false},
		{MimeVulnReport, "application/vnd.security.vulnerability.report", false},
		{"a/b; x=1; y=2", "a/b; y=2; x=1", true},
		{"not a type", "NOT A TYPE ", true},
	}
	for _, tc := range tests {
		if got := SameMIME(tc.a, tc.b); got != tc.want {
			t.Errorf("SameMIME(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSeverity(t *testing.T) {
	t.Parallel()
	for i, s := range Severities() {
		if SeverityRank(s) != i {
			t.Errorf("SeverityRank(%q) = %d, want %d", s, SeverityRank(s), i)
		}
	}
	if SeverityRank("critical") != 5 || Severity("high") != SeverityHigh || Severity("bogus") != SeverityUnknown {
		t.Fatalf("case or unknown words: %d %q %q", SeverityRank("critical"), Severity("high"), Severity("bogus"))
	}
	// Severities hands out a copy: changing it changes nothing.
	s := Severities()
	s[0] = "X"
	if Severities()[0] != SeverityUnknown {
		t.Fatal("Severities shares its slice")
	}
}

// The models carry the spec's field names.
func TestWireNames(t *testing.T) {
	t.Parallel()
	raw, err := json.Marshal(ScanRequest{
		Registry: Registry{URL: "https://r.example", Authorization: "Basic x"},
		Artifact: Artifact{Repository: "library/a", Digest: "sha256:00", Tag: "v1", MimeType: MimeDockerManifest},
		EnabledCapabilities: []EnabledCapability{{Type: CapabilitySBOM, ProducesMimeTypes: []string{MimeSBOMReport},
			Parameters: map[string]any{AttrSBOMMediaTypes: []string{MediaTypeCycloneDX}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"registry":{"url":"https://r.example","authorization":"Basic x"},"artifact":{"repository":"library/a","digest":"sha256:00","tag":"v1","mime_type":"application/vnd.docker.distribution.manifest.v2+json"},"enabled_capabilities":[{"type":"sbom","produces_mime_types":["application/vnd.security.sbom.report+json; version=1.0"],"parameters":{"sbom_media_types":["application/vnd.cyclonedx+json"]}}]}`
	if string(raw) != want {
		t.Fatalf("scan request JSON\n got %s\nwant %s", raw, want)
	}
	var e ErrorResponse
	if err := json.Unmarshal([]byte(`{"error":{"message":"boom"}}`), &e); err != nil || e.Error.Message != "boom" {
		t.Fatalf("error response: %+v %v", e, err)
	}
}
