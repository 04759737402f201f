// Package server is the scanner adapter's HTTP side: Harbor's Pluggable
// Scanner API (goharbor/pluggable-scanner-spec, API 1.2) over an OSV
// advisory database, and the scans behind it.
//
//	GET  /api/v1/metadata            the scanner, its capabilities and properties
//	POST /api/v1/scan                202 {"id"}: the scan is queued
//	GET  /api/v1/scan/{id}/report    302 + Refresh-After while it runs, then the
//	                                 report in the Accept type; 500 if it failed
//	GET  /probe/healthy, /probe/ready  health, without auth
//
// Every /api/v1 call needs the API key, in the X-ScannerAdapter-API-Key
// header (Harbor's API-key auth) or as Authorization: Bearer <key>; the
// key is compared in constant time and an empty key is refused at start.
//
// A scan pulls the artifact from the registry of the request, with the
// request's authorization (Basic, handed to go-containerregistry, which
// also trades it for a token where the registry wants one, or Bearer),
// reads its OS and packages (pkgdb) and matches them against the
// advisories (osv). At most MaxScans run at once; more wait in a bounded
// queue, and a full queue answers 503. A scan that cannot pull ends in a
// report answer of 500 whose message says what failed. Finished scans are
// kept for Retention, then forgotten (404).
//
// Reports: the Harbor vulnerability report (version 1.1, and 1.0, which
// leaves out CVSS, CWE IDs and vendor attributes) and an SBOM of every
// package found (CycloneDX JSON, wrapped as the spec's SBOM report; the
// sbom_media_type query parameter is required, as the spec says).
//
// Errors answer {"error":{"message"}} as the spec says: 400 a body that is
// not a scan request, 401 no or a wrong API key, 404 an unknown scan, 422
// a scan request with an invalid field, 501 an artifact or report type the
// scanner does not handle, 503 a full queue.
package server
