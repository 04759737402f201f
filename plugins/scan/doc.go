// Command scan is the IMAGE_SCAN job plugin: Harbor's scan job, a client
// of Harbor's Pluggable Scanner API (goharbor/pluggable-scanner-spec)
// that drives an external scanner adapter, such as Berth's offline one
// (plugins/scan/adapter, bin/scanner), Trivy's or Clair's.
//
// Parameters are Harbor's: registration (the scanner registration: url,
// auth, access_credential, name, uuid, skip_cert_verify or Harbor's
// skip_certVerify), scanRequest (registry{url, authorization},
// artifact{repository, digest, tag, mime_type}, enabled_capabilities) and
// mimeTypes, the report types to fetch; registration and scanRequest are
// each a JSON string, as Harbor's core sends them, or an object. Harbor's
// robotAccount and authType are taken too: without an authorization in
// the scan request, the robot's Basic credentials are sent. Berth adds
// timeout_seconds (default 1800), the bound of the whole job.
//
// A run gets GET /api/v1/metadata under the registration's URL and checks
// that a capability consumes the artifact's MIME type and produces every
// requested report type; POSTs the scan request (202 with an id); then,
// per report type, GETs /api/v1/scan/{id}/report with that Accept type
// (and sbom_media_type for an SBOM: the scan request's, else the
// scanner's first, else CycloneDX), waiting out each 302 for its
// Refresh-After (at least 1 s, at most max_refresh_after_seconds), until
// the report comes or the deadline passes. The adapter's auth is Harbor's:
// Basic (base64 of access_credential), Bearer, or the API key in the
// X-ScannerAdapter-API-Key header (auth "X-ScannerAdapter-API-Key", as
// Harbor's core spells it, or "APIKey"). Redirects are not followed; each
// call has its own timeout (request_timeout_seconds, default 30), and the
// job's deadline cuts any call or wait short.
//
// Results: Harbor's job writes reports into Harbor's database; Berth keeps
// them as the job's output (the reports as JSON, with Harbor's check-in
// fields digest, registration_uuid and mime_type, and a summary by
// severity), kept with the stats and sent in the final status hook; a
// report too large for the output's 1 MiB is replaced by a note of its
// size. Progress is checked in and logged: "scan request accepted", each
// "not ready, retry after Ns", each "report <type> received", last the
// summary ("scan done: ...").
//
// Stop and cancel end the poll at once (Stopped). An adapter's error
// answer (4xx or 5xx with the spec's {"error":{"message"}}) ends the job
// in Error with that message; a 401 names the auth. Like Harbor's, the
// job runs once (MaxFails 1) and is never retried. timeout_seconds passed
// ends it in Error: "the report <type> timed out".
//
// Validate refuses, naming the parameter: a missing registration, scan
// request or MIME type list; a registration or registry URL that is not
// http(s); an unknown auth type; a missing access_credential for an auth
// type that needs one; an artifact without repository or digest. The
// adapter's address is guarded against server-side request forgery as
// the webhook's is (sdk/egress): a loopback, private or link-local
// address is refused unless plugin_config.scan.allowed_networks holds it.
//
// Settings (plugin_config.scan): allowed_networks, request_timeout_seconds
// (1 to 600, default 30), max_refresh_after_seconds (1 to 3600, default 60).
//
// The wire models are plugins/scan/scanapi, shared with the adapter. It
// imports sdk and scanapi, never the host.
package main
