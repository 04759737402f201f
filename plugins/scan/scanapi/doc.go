// Package scanapi is the wire contract of Harbor's Pluggable Scanner API
// (goharbor/pluggable-scanner-spec, API v1.2) as Berth speaks it on both
// sides: the IMAGE_SCAN plugin (plugins/scan) is its client, Berth's
// scanner adapter (plugins/scan/adapter) its server. It holds the JSON
// models, the MIME types of requests and reports, the header names, and
// the one comparison of MIME types both sides use; no behaviour.
//
// The endpoints, under a scanner's base URL:
//
//	GET  /api/v1/metadata                 the scanner and its capabilities
//	POST /api/v1/scan                     202 {"id": ...}: a scan is queued
//	GET  /api/v1/scan/{id}/report         200 the report in the Accept type,
//	                                      302 + Refresh-After while it runs
//
// Errors answer {"error":{"message":...}} (ErrorResponse).
package scanapi
