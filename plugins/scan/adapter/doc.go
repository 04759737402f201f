// Command scanner is Berth's offline scanner adapter (bin/scanner): a
// small, real scanner that speaks Harbor's Pluggable Scanner API, so that
// IMAGE_SCAN (plugins/scan), or Harbor itself, can scan images on a
// machine without network access to a vulnerability service.
//
//	bin/scanner -addr 127.0.0.1:8090 -api-key KEY -advisories plugins/scan/adapter/testdata/advisories
//
// It pulls the artifact named in a scan request from its registry (with
// the request's authorization), flattens the image's layers, reads the OS
// (etc/os-release) and the installed packages (Debian's dpkg status,
// Alpine's apk database), and matches them against OSV advisories loaded
// at start from a directory or a file, in each ecosystem's version order.
// Reports: Harbor's vulnerability report (1.1 and 1.0) and a CycloneDX
// SBOM. Every flag can also be set by an env variable (see -h); a flag
// wins over its variable, and a variable that does not parse is an error.
//
// The parts: osv (advisories, version order, severity), pkgdb (what an
// image has installed), server (the API and its scans). main parses the
// flags, loads the advisories and serves until SIGINT or SIGTERM.
package main
