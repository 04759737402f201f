package pkgdb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Paths read from an image's filesystem.
const (
	PathOSRelease    = "etc/os-release"
	PathOSReleaseLib = "usr/lib/os-release"
	PathDpkgStatus   = "var/lib/dpkg/status"
	PathAPKInstalled = "lib/apk/db/installed"
)

// maxFile bounds each file read from an image.
const maxFile = 64 << 20

// Package types.
const (
	TypeDeb = "deb"
	TypeAPK = "apk"
)

// OS is what os-release says.
type OS struct {
	ID         string `json:"id"`
	VersionID  string `json:"version_id,omitempty"`
	Name       string `json:"name,omitempty"`
	PrettyName string `json:"pretty_name,omitempty"`
}

// Ecosystem is the OSV ecosystem of the OS's packages ("Debian:12",
// "Alpine:v3.19", "Ubuntu:22.04"), or "" for an OS it does not know.
func (o OS) Ecosystem() string {
	switch o.ID {
	case "debian":
		if o.VersionID == "" {
			return "Debian"
		}
		major, _, _ := strings.Cut(o.VersionID, ".")
		return "Debian:" + major
	case "ubuntu":
		if o.VersionID == "" {
			return "Ubuntu"
		}
		return "Ubuntu:" + o.VersionID
	case "alpine":
		parts := strings.SplitN(o.VersionID, ".", 3)
		if len(parts) < 2 {
			return "Alpine"
		}
		minor, _, _ := strings.Cut(parts[1], "_")
		return "Alpine:v" + parts[0] + "." + minor
	}
	return ""
}

// Package is one installed package.
type Package struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
	// Source is the source package (dpkg's Source, apk's origin), when it
	// differs from Name; SourceVersion its version, when it differs.
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
}

// SourceName is the name advisories know the package by.
func (p Package) SourceName() string {
	if p.Source != "" {
		return p.Source
	}
	return p.Name
}

// SourceVer is the version advisories compare.
func (p Package) SourceVer() string {
	if p.SourceVersion != "" {
		return p.SourceVersion
	}
	return p.Version
}

// PURL is the package URL of p on os (pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12).
func (p Package) PURL(o OS) string {
	ns := o.ID
	if ns == "" {
		ns = p.Type
	}
	q := url.Values{}
	if p.Arch != "" {
		q.Set("arch", p.Arch)
	}
	if o.VersionID != "" {
		q.Set("distro", o.ID+"-"+o.VersionID)
	}
	if p.Source != "" && p.Type == TypeDeb {
		q.Set("upstream", p.Source)
	}
	s := "pkg:" + p.Type + "/" + url.PathEscape(ns) + "/" + url.PathEscape(p.Name) + "@" + url.PathEscape(p.Version)
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// Inventory is what an image has installed.
type Inventory struct {
	OS       OS        `json:"os"`
	Packages []Package `json:"packages"`
}

// ErrNoOS is returned for an image without os-release.
var ErrNoOS = errors.New("no etc/os-release: the image's operating system is unknown")

// FromImage flattens img and reads its inventory.
func FromImage(img v1.Image) (Inventory, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	return Read(rc)
}

// Read reads the inventory of a filesystem given as a tar stream (a
// flattened image).
func Read(r io.Reader) (Inventory, error) {
	wanted := map[string]bool{PathOSRelease: true, PathOSReleaseLib: true, PathDpkgStatus: true, PathAPKInstalled: true}
	files := map[string][]byte{}
	links := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Inventory{}, fmt.Errorf("pkgdb: read the image's filesystem: %w", err)
		}
		name := clean(h.Name)
		if !wanted[name] {
			continue
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			target := h.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = clean(target)
		case tar.TypeReg:
			b, err := io.ReadAll(io.LimitReader(tr, maxFile+1))
			if err != nil {
				return Inventory{}, fmt.Errorf("pkgdb: read %s: %w", name, err)
			}
			if len(b) > maxFile {
				return Inventory{}, fmt.Errorf("pkgdb: %s is larger than %d MiB", name, maxFile>>20)
			}
			files[name] = b
		}
	}
	get := func(name string) ([]byte, bool) {
		for range 8 {
			if b, ok := files[name]; ok {
				return b, true
			}
			t, ok := links[name]
			if !ok {
				return nil, false
			}
			name = t
		}
		return nil, false
	}
	var inv Inventory
	osr, ok := get(PathOSRelease)
	if !ok {
		osr, ok = get(PathOSReleaseLib)
	}
	if !ok {
		return inv, ErrNoOS
	}
	inv.OS = ParseOSRelease(bytes.NewReader(osr))
	if b, ok := get(PathDpkgStatus); ok {
		pkgs, err := ParseDpkgStatus(bytes.NewReader(b))
		if err != nil {
			return inv, err
		}
		inv.Packages = append(inv.Packages, pkgs...)
	}
	if b, ok := get(PathAPKInstalled); ok {
		pkgs, err := ParseAPKInstalled(bytes.NewReader(b))
		if err != nil {
			return inv, err
		}
		inv.Packages = append(inv.Packages, pkgs...)
	}
	sort.Slice(inv.Packages, func(i, j int) bool {
		a, b := inv.Packages[i], inv.Packages[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Arch < b.Arch
	})
	return inv, nil
}

// clean makes a tar entry's name relative and clean ("./etc/x" is "etc/x").
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// ParseOSRelease reads os-release (KEY=value lines, values maybe quoted).
func ParseOSRelease(r io.Reader) OS {
	var o OS
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = unquote(strings.TrimSpace(v))
		switch strings.TrimSpace(k) {
		case "ID":
			o.ID = strings.ToLower(v)
		case "VERSION_ID":
			o.VersionID = v
		case "NAME":
			o.Name = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	return o
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		if v != "" {
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
	}
	return v
}

// ParseDpkgStatus reads dpkg's status file: the installed packages.
func ParseDpkgStatus(r io.Reader) ([]Package, error) {
	var out []Package
	err := paragraphs(r, func(fields map[string]string) {
		if fields["Package"] == "" || fields["Version"] == "" {
			return
		}
		st := strings.Fields(fields["Status"])
		if len(st) != 3 || st[2] != "installed" {
			return
		}
		p := Package{Type: TypeDeb, Name: fields["Package"], Version: fields["Version"], Arch: fields["Architecture"]}
		if src := fields["Source"]; src != "" {
			name, ver, _ := strings.Cut(src, " ")
			ver = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(ver), "("), ")")
			if name != p.Name {
				p.Source = name
			}
			if ver != "" && ver != p.Version {
				p.SourceVersion = ver
			}
		}
		out = append(out, p)
	}, deb822)
	if err != nil {
		return nil, fmt.Errorf("pkgdb: %s: %w", PathDpkgStatus, err)
	}
	return out, nil
}

// ParseAPKInstalled reads apk's installed database.
func ParseAPKInstalled(r io.Reader) ([]Package, error) {
	var out []Package
	err := paragraphs(r, func(fields map[string]string) {
		if fields["P"] == "" || fields["V"] == "" {
			return
		}
		p := Package{Type: TypeAPK, Name: fields["P"], Version: fields["V"], Arch: fields["A"]}
		if o := fields["o"]; o != "" && o != p.Name {
			p.Source = o
		}
		out = append(out, p)
	}, apkLine)
	if err != nil {
		return nil, fmt.Errorf("pkgdb: %s: %w", PathAPKInstalled, err)
	}
	return out, nil
}

// A line format: splits one line into a field and its value, or says it
// continues the previous field.
type lineFormat func(line string) (key, value string, cont, ok bool)

func deb822(line string) (string, string, bool, bool) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", true, true
	}
	k, v, ok := strings.Cut(line, ":")
	return k, strings.TrimSpace(v), false, ok
}

func apkLine(line string) (string, string, bool, bool) {
	k, v, ok := strings.Cut(line, ":")
	return k, v, false, ok && len(k) == 1
}

// paragraphs calls each for every blank-line separated paragraph, with
// the first value of each field.
func paragraphs(r io.Reader, each func(map[string]string), format lineFormat) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	fields := map[string]string{}
	flush := func() {
		if len(fields) > 0 {
			each(fields)
			fields = map[string]string{}
		}
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, cont, ok := format(line)
		if cont || !ok {
			continue
		}
		if _, dup := fields[k]; !dup {
			fields[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	flush()
	return nil
}
