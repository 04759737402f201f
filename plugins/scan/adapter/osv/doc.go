// Package osv is the scanner adapter's advisory database: vulnerability
// advisories in the OSV format (the open JSON schema of osv.dev and the
// scanners that read it), loaded from a directory or a file at start, and
// matched against installed packages.
//
// An advisory names the packages it affects by ecosystem and name
// ("Debian:12" and "openssl", "Alpine:v3.19" and "busybox"), with ranges of
// events (introduced, fixed, last_affected) in the ecosystem's own version
// order, and exact affected versions. Load reads every *.json file (one
// advisory, or a list of them) under the path; Match says which
// advisories affect one package at one version, with the version that
// fixes it and a severity on the Pluggable Scanner API's scale.
//
// Version order is each ecosystem's: dpkg's for Debian and Ubuntu
// (github.com/knqyf263/go-deb-version), apk's for Alpine
// (github.com/knqyf263/go-apk-version). Advisories of other ecosystems are
// loaded and counted but match nothing.
//
// Severity comes from the advisory's CVSS v3 vector (its base score,
// computed as CVSS 3.1 specifies, rated None/Low/Medium/High/Critical),
// else from a severity or urgency word in the affected package's
// ecosystem_specific or the advisory's database_specific, else Unknown.
//
// A DB is read-only once loaded and safe for concurrent use.
package osv
