package pkgdb

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is a tar entry: a file (body), a symlink (link) or a whiteout.
type entry struct{ name, body, link string }

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	raw := tarOf(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const debianOS = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n# a comment\nID=debian\n"

const dpkgStatus = `Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
 zlib is a library implementing the deflate compression method.
 .
 Version: 9.9 (a continuation line, not a field)

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1

Package: removed
Status: deinstall ok config-files
Version: 1.0-1

Package: half
Status: install ok half-configured
Version: 1.0-1
`

func TestParseDpkgStatus(t *testing.T) {
	t.Parallel()
	pkgs, err := ParseDpkgStatus(strings.NewReader(dpkgStatus))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Type: TypeDeb, Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64", Source: "zlib"},
		{Type: TypeDeb, Name: "libssl3", Version: "3.0.11-1~deb12u2+b1", Arch: "amd64", Source: "openssl", SourceVersion: "3.0.11-1~deb12u2"},
	}
	if len(pkgs) != len(want) {
		t.Fatalf("packages %+v, want %+v", pkgs, want)
	}
	for i := range want {
		if pkgs[i] != want[i] {
			t.Errorf("package %d = %+v, want %+v", i, pkgs[i], want[i])
		}
	}
	if pkgs[1].SourceName() != "openssl" || pkgs[1].SourceVer() != "3.0.11-1~deb12u2" || pkgs[0].SourceVer() != "1:1.2.13.dfsg-1" {
		t.Fatalf("source of %+v", pkgs)
	}
}

func TestParseAPKInstalled(t *testing.T) {
	t.Parallel()
	db := "C:Q1abc=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nS:500\no:busybox\nF:bin\nR:busybox\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\n\nP:noversion\n"
	pkgs, err := ParseAPKInstalled(strings.NewReader(db))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Type: TypeAPK, Name: "busybox", Version: "1.36.1-r15", Arch: "x86_64"},
		{Type: TypeAPK, Name: "libcrypto3", Version: "3.1.4-r5", Arch: "x86_64", Source: "openssl"},
	}
	if len(pkgs) != 2 || pkgs[0] != want[0] || pkgs[1] != want[1] {
		t.Fatalf("packages %+v, want %+v", pkgs, want)
	}
}

func TestOSRelease(t *testing.T) {
	t.Parallel()
	o := ParseOSRelease(strings.NewReader(debianOS))
	if o.ID != "debian" || o.VersionID != "12" || o.PrettyName != "Debian GNU/Linux 12 (bookworm)" || o.Ecosystem() != "Debian:12" {
		t.Fatalf("os %+v, ecosystem %s", o, o.Ecosystem())
	}
	for osr, want := range map[string]string{
		"ID=alpine\nVERSION_ID=3.19.1\n":           "Alpine:v3.19",
		"ID=alpine\nVERSION_ID=3.20.0_alpha2024\n": "Alpine:v3.20",
		"ID='ubuntu'\nVERSION_ID=\"22.04\"\n":      "Ubuntu:22.04",
		"ID=debian\n":                              "Debian",
		"ID=\"Debian\"\nVERSION_ID=\"11.7\"\n":     "Debian:11",
		"ID=fedora\nVERSION_ID=39\n":               "",
	} {
		if got := ParseOSRelease(strings.NewReader(osr)).Ecosystem(); got != want {
			t.Errorf("Ecosystem of %q = %q, want %q", osr, got, want)
		}
	}
}

func TestPURL(t *testing.T) {
	t.Parallel()
	o := OS{ID: "debian", VersionID: "12"}
	p := Package{Type: TypeDeb, Name: "libssl3", Version: "3.0.11-1~deb12u2", Arch: "amd64", Source: "openssl"}
	if got, want := p.PURL(o), "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"; got != want {
		t.Fatalf("PURL = %s, want %s", got, want)
	}
	a := Package{Type: TypeAPK, Name: "busybox", Version: "1.36.1-r15"}
	if got, want := a.PURL(OS{ID: "alpine", VersionID: "3.19.1"}), "pkg:apk/alpine/busybox@1.36.1-r15?distro=alpine-3.19.1"; got != want {
		t.Fatalf("PURL = %s, want %s", got, want)
	}
}

// FromImage flattens layers: a later layer's file wins, a whiteout
// deletes, and etc/os-release may be a symlink to usr/lib/os-release.
func TestFromImage(t *testing.T) {
	t.Parallel()
	base := layer(t,
		entry{name: "usr/lib/os-release", body: debianOS},
		entry{name: "etc/os-release", link: "../usr/lib/os-release"},
		entry{name: "./var/lib/dpkg/status", body: "Package: old\nStatus: install ok installed\nVersion: 1.0-1\n"},
		entry{name: "lib/apk/db/installed", body: "P:stray\nV:1.0-r0\n"},
	)
	top := layer(t,
		entry{name: "var/lib/dpkg/status", body: dpkgStatus},
		entry{name: "lib/apk/db/.wh.installed"},
	)
	img, err := mutate.AppendLayers(empty.Image, base, top)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := FromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range inv.Packages {
		names = append(names, p.Name)
	}
	if inv.OS.Ecosystem() != "Debian:12" || strings.Join(names, ",") != "libssl3,zlib1g" {
		t.Fatalf("inventory %+v", inv)
	}

	noOS, err := mutate.AppendLayers(empty.Image, layer(t, entry{name: "var/lib/dpkg/status", body: dpkgStatus}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromImage(noOS); !errors.Is(err, ErrNoOS) {
		t.Fatalf("an image without os-release: %v", err)
	}
}
