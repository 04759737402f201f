package osv

import (
	"strings"

	apk "github.com/knqyf263/go-apk-version"
	deb "github.com/knqyf263/go-deb-version"
)

// comparer orders two versions of one ecosystem (-1, 0, 1), or fails on
// a version it cannot read.
type comparer func(a, b string) (int, error)

// comparerFor returns the version order of an ecosystem ("Debian:12",
// "Alpine:v3.19", "Ubuntu:22.04:LTS"), or nil for one it does not know.
func comparerFor(ecosystem string) comparer {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "Debian", "Ubuntu":
		return CompareDeb
	case "Alpine":
		return CompareAPK
	}
	return nil
}

// Supported says whether the adapter knows the version order of ecosystem.
func Supported(ecosystem string) bool { return comparerFor(ecosystem) != nil }

// CompareDeb orders two Debian package versions as dpkg does
// ([epoch:]upstream[-revision]).
func CompareDeb(a, b string) (int, error) {
	va, err := deb.NewVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := deb.NewVersion(b)
	if err != nil {
		return 0, err
	}
	return sign(va.Compare(vb)), nil
}

// CompareAPK orders two Alpine package versions as apk does
// (1.2.3_rc1-r0 < 1.2.3-r0 < 1.2.3_p1-r0).
func CompareAPK(a, b string) (int, error) {
	va, err := apk.NewVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := apk.NewVersion(b)
	if err != nil {
		return 0, err
	}
	return sign(va.Compare(vb)), nil
}

// sign is -1, 0 or 1 by the sign of n (the libraries return differences).
func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
