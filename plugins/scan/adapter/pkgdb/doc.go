// Package pkgdb finds what an image has installed: it flattens the
// image's layers (later layers win, whiteouts delete) and reads the OS
// from etc/os-release (or usr/lib/os-release, following a symlink between
// them) and the installed packages from Debian's var/lib/dpkg/status or
// Alpine's lib/apk/db/installed.
//
// Only packages a package manager lists as installed count: a dpkg entry
// whose status is not "install ok installed" (removed, half-configured)
// is left out. Each package keeps its source package (dpkg's Source,
// apk's origin), which is what Debian's and Alpine's advisories name.
//
// It reads images (go-containerregistry's v1.Image) and tar streams of a
// filesystem; it does not pull: the adapter's server does.
package pkgdb
