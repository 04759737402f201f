package server

import (
	"bytes"
	"fmt"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/berth-dev/berth/plugins/scan/scanapi"
)

// vulnReport is the Harbor vulnerability report of a scan; v11 adds what
// version 1.1 has beyond 1.0 (CVSS, CWE IDs, vendor attributes).
func (s *Server) vulnReport(sc *scan, res *result, v11 bool) scanapi.VulnReport {
	rep := scanapi.VulnReport{
		GeneratedAt:     res.at.UTC().Format(time.RFC3339Nano),
		Artifact:        sc.req.Artifact,
		Scanner:         s.scanner,
		Vulnerabilities: []scanapi.VulnItem{},
	}
	top := -1
	for _, f := range res.findings {
		a := f.Advisory
		desc := a.Summary
		if a.Details != "" {
			if desc != "" {
				desc += "\n\n"
			}
			desc += a.Details
		}
		item := scanapi.VulnItem{
			ID:          a.ID,
			Package:     f.pkg.Name,
			Version:     f.pkg.Version,
			FixVersion:  f.FixVersion,
			Severity:    f.Severity,
			Description: desc,
		}
		for _, r := range a.References {
			item.Links = append(item.Links, r.URL)
		}
		if v11 {
			if f.ScoreV3 != nil {
				item.PreferredCVSS = &scanapi.CVSS{ScoreV3: f.ScoreV3, VectorV3: f.VectorV3}
			}
			item.CweIDs = f.CWEIDs
			attrs := map[string]any{"advisory_source": "OSV"}
			if len(a.Aliases) > 0 {
				attrs["aliases"] = a.Aliases
			}
			if f.pkg.Source != "" {
				attrs["source_package"] = f.pkg.Source
			}
			item.VendorAttributes = attrs
		}
		rep.Vulnerabilities = append(rep.Vulnerabilities, item)
		top = max(top, scanapi.SeverityRank(f.Severity))
	}
	if top >= 0 {
		rep.Severity = scanapi.Severities()[top]
	}
	return rep
}

// sbomReport is the SBOM report of a scan: every package found, as
// CycloneDX JSON.
func (s *Server) sbomReport(sc *scan, res *result) (scanapi.SBOMReport, error) {
	inv := res.inv
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + sc.id
	bom.Metadata = &cdx.Metadata{
		Timestamp: res.at.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: s.scanner.Name, Version: s.scanner.Version, Publisher: s.scanner.Vendor}}},
		Component: &cdx.Component{
			BOMRef:  "artifact",
			Type:    cdx.ComponentTypeContainer,
			Name:    sc.req.Artifact.Repository,
			Version: sc.req.Artifact.Digest,
		},
	}
	components := []cdx.Component{}
	var deps []string
	if inv.OS.ID != "" {
		components = append(components, cdx.Component{
			BOMRef:  "os",
			Type:    cdx.ComponentTypeOS,
			Name:    inv.OS.ID,
			Version: inv.OS.VersionID,
		})
		deps = append(deps, "os")
	}
	for _, p := range inv.Packages {
		purl := p.PURL(inv.OS)
		c := cdx.Component{
			BOMRef:     purl,
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: purl,
		}
		var props []cdx.Property
		if p.Source != "" {
			props = append(props, cdx.Property{Name: "berth:package:source", Value: p.Source})
		}
		if p.SourceVersion != "" {
			props = append(props, cdx.Property{Name: "berth:package:source_version", Value: p.SourceVersion})
		}
		props = append(props, cdx.Property{Name: "berth:package:type", Value: p.Type})
		c.Properties = &props
		components = append(components, c)
		deps = append(deps, purl)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: "artifact", Dependencies: &deps}}
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).Encode(bom); err != nil {
		return scanapi.SBOMReport{}, fmt.Errorf("encode the SBOM: %w", err)
	}
	return scanapi.SBOMReport{
		GeneratedAt: res.at.UTC().Format(time.RFC3339Nano),
		Artifact:    sc.req.Artifact,
		Scanner:     s.scanner,
		MediaType:   scanapi.MediaTypeCycloneDX,
		SBOM:        bytes.TrimSpace(buf.Bytes()),
		VendorAttributes: map[string]any{
			"os":       inv.OS.PrettyName,
			"packages": len(inv.Packages),
		},
	}, nil
}
