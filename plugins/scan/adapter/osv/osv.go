package osv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Advisory is one OSV advisory, as far as the adapter reads it.
type Advisory struct {
	ID               string         `json:"id"`
	Modified         string         `json:"modified"`
	Published        string         `json:"published,omitempty"`
	Withdrawn        string         `json:"withdrawn,omitempty"`
	Aliases          []string       `json:"aliases,omitempty"`
	Summary          string         `json:"summary,omitempty"`
	Details          string         `json:"details,omitempty"`
	Severity         []Severity     `json:"severity,omitempty"`
	Affected         []Affected     `json:"affected,omitempty"`
	References       []Reference    `json:"references,omitempty"`
	DatabaseSpecific map[string]any `json:"database_specific,omitempty"`
}

// Severity is a severity score of a given type (CVSS_V2, CVSS_V3, CVSS_V4, ...).
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one package an advisory affects.
type Affected struct {
	Package           Package        `json:"package"`
	Ranges            []Range        `json:"ranges,omitempty"`
	Versions          []string       `json:"versions,omitempty"`
	Severity          []Severity     `json:"severity,omitempty"`
	EcosystemSpecific map[string]any `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  map[string]any `json:"database_specific,omitempty"`
}

// Package names a package in an ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range is a range of affected versions: events in the order of Type
// (ECOSYSTEM, SEMVER or GIT; only ECOSYSTEM is matched).
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one event of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link to more about an advisory.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// maxFile bounds one advisory file.
const maxFile = 64 << 20

// DB is a loaded set of advisories, indexed by ecosystem and package.
type DB struct {
	index     map[key][]entry
	count     int
	skipped   int
	updatedAt time.Time
}

type key struct{ ecosystem, name string }

// entry is one affected package of one advisory.
type entry struct {
	adv *Advisory
	aff *Affected
}

// Load reads the advisories at path: a directory (every *.json file under
// it) or one file. A file holds one advisory or a JSON list of them. A
// file that does not parse, or an advisory without an ID, is an error that
// names the file; a withdrawn advisory is skipped.
func Load(path string) (*DB, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("osv: advisories: %w", err)
	}
	var files []string
	if info.IsDir() {
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".json") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("osv: advisories: %w", err)
		}
		sort.Strings(files)
	} else {
		files = []string{path}
	}
	db := &DB{index: map[key][]entry{}}
	for _, f := range files {
		advs, err := readFile(f)
		if err != nil {
			return nil, err
		}
		for _, a := range advs {
			db.add(a)
		}
	}
	return db, nil
}

// Parse makes a DB of advisories given as JSON documents (each one
// advisory or a list), for tests and callers that hold them in memory.
func Parse(docs ...[]byte) (*DB, error) {
	db := &DB{index: map[key][]entry{}}
	for i, d := range docs {
		advs, err := decode(d, fmt.Sprintf("document %d", i))
		if err != nil {
			return nil, err
		}
		for _, a := range advs {
			db.add(a)
		}
	}
	return db, nil
}

func readFile(path string) ([]*Advisory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("osv: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("osv: read %s: %w", path, err)
	}
	if len(raw) > maxFile {
		return nil, fmt.Errorf("osv: %s is larger than %d MiB", path, maxFile>>20)
	}
	return decode(raw, path)
}

func decode(raw []byte, where string) ([]*Advisory, error) {
	raw = bytes.TrimSpace(raw)
	var advs []*Advisory
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &advs); err != nil {
			return nil, fmt.Errorf("osv: %s is not a list of OSV advisories: %v", where, err)
		}
	} else {
		var a Advisory
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("osv: %s is not an OSV advisory: %v", where, err)
		}
		advs = []*Advisory{&a}
	}
	for i, a := range advs {
		if a == nil || strings.TrimSpace(a.ID) == "" {
			return nil, fmt.Errorf("osv: %s: advisory %d has no id", where, i)
		}
	}
	return advs, nil
}

func (db *DB) add(a *Advisory) {
	if a.Withdrawn != "" {
		return
	}
	db.count++
	if t, err := time.Parse(time.RFC3339, a.Modified); err == nil && t.After(db.updatedAt) {
		db.updatedAt = t
	}
	for i := range a.Affected {
		aff := &a.Affected[i]
		if comparerFor(aff.Package.Ecosystem) == nil {
			db.skipped++
			continue
		}
		k := key{aff.Package.Ecosystem, aff.Package.Name}
		db.index[k] = append(db.index[k], entry{adv: a, aff: aff})
	}
}

// Len is the number of advisories loaded (withdrawn ones left out).
func (db *DB) Len() int { return db.count }

// Unsupported is the number of affected packages of ecosystems whose
// version order the adapter does not know; they match nothing.
func (db *DB) Unsupported() int { return db.skipped }

// UpdatedAt is the latest modified time of the advisories (zero if none
// says).
func (db *DB) UpdatedAt() time.Time { return db.updatedAt }

// Finding is an advisory that affects a package.
type Finding struct {
	Advisory *Advisory
	// FixVersion is the lowest version after the installed one that an
	// advisory's range says is fixed; empty when none is known.
	FixVersion string
	// Severity is on the scanner API's scale (Unknown ... Critical).
	Severity string
	// ScoreV3 and VectorV3 are the CVSS v3 base score and vector, when
	// the advisory has one.
	ScoreV3  *float64
	VectorV3 string
	// CWEIDs are the weaknesses the advisory names (database_specific.cwe_ids).
	CWEIDs []string
}

// Match returns the advisories that affect package name at version in
// ecosystem ("Debian:12"), ordered by ID. An advisory for the ecosystem
// without its release ("Debian") applies to every release. A version that
// the ecosystem's order cannot read is an error.
func (db *DB) Match(ecosystem, name, version string) ([]Finding, error) {
	cmp := comparerFor(ecosystem)
	if cmp == nil {
		return nil, nil
	}
	if _, err := cmp(version, version); err != nil {
		return nil, fmt.Errorf("osv: %s %s: version %q: %v", ecosystem, name, version, err)
	}
	entries := db.index[key{ecosystem, name}]
	if base, _, ok := strings.Cut(ecosystem, ":"); ok {
		entries = append(append([]entry(nil), entries...), db.index[key{base, name}]...)
	}
	var out []Finding
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.adv.ID] {
			continue
		}
		hit, fix := affects(e.aff, version, cmp)
		if !hit {
			continue
		}
		seen[e.adv.ID] = true
		f := Finding{Advisory: e.adv, FixVersion: fix}
		f.Severity, f.ScoreV3, f.VectorV3 = severityOf(e.adv, e.aff)
		f.CWEIDs = stringsOf(e.adv.DatabaseSpecific["cwe_ids"])
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Advisory.ID < out[j].Advisory.ID })
	return out, nil
}

// affects says whether version is affected by aff, and the fix version
// after it (the lowest fixed event above the version).
func affects(aff *Affected, version string, cmp comparer) (bool, string) {
	less := func(a, b string) bool { c, err := cmp(a, b); return err == nil && c < 0 }
	hit := false
	for _, v := range aff.Versions {
		if c, err := cmp(version, v); err == nil && c == 0 {
			hit = true
		}
	}
	fix := ""
	for _, r := range aff.Ranges {
		if r.Type != "ECOSYSTEM" {
			continue
		}
		in, f := inRange(r.Events, version, cmp)
		if in {
			hit = true
			if f != "" && (fix == "" || less(f, fix)) {
				fix = f
			}
		}
	}
	return hit, fix
}

// inRange evaluates the events of one range, sorted by version: a version
// is affected after an introduced event at or below it, until a fixed
// event at or below it or a last_affected event below it.
func inRange(events []Event, version string, cmp comparer) (bool, string) {
	type ev struct {
		at   string
		kind int // 0 introduced, 1 fixed, 2 last_affected, 3 limit
	}
	var evs []ev
	for _, e := range events {
		switch {
		case e.Introduced != "":
			evs = append(evs, ev{e.Introduced, 0})
		case e.Fixed != "":
			evs = append(evs, ev{e.Fixed, 1})
		case e.LastAffected != "":
			evs = append(evs, ev{e.LastAffected, 2})
		case e.Limit != "":
			evs = append(evs, ev{e.Limit, 3})
		}
	}
	order := func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "0":
			return -1
		case b == "0":
			return 1
		}
		c, err := cmp(a, b)
		if err != nil {
			return strings.Compare(a, b)
		}
		return c
	}
	sort.SliceStable(evs, func(i, j int) bool { return order(evs[i].at, evs[j].at) < 0 })
	affected := false
	fix := ""
	for _, e := range evs {
		c := 1 // version against the event: version is above "0"
		if e.at != "0" {
			c = order(version, e.at)
		}
		switch e.kind {
		case 0:
			if c >= 0 {
				affected = true
			}
		case 1:
			if c >= 0 {
				affected = false
			} else if affected && fix == "" {
				fix = e.at
			}
		case 2:
			if c > 0 {
				affected = false
			}
		case 3:
			if c >= 0 {
				affected = false
			}
		}
	}
	if !affected {
		fix = ""
	}
	return affected, fix
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}
