package osv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samples is the adapter's sample advisories (what make run loads).
const samples = "../testdata/advisories"

func TestLoadSamples(t *testing.T) {
	t.Parallel()
	db, err := Load(samples)
	if err != nil {
		t.Fatal(err)
	}
	// Six advisories in five files, one of them withdrawn.
	if db.Len() != 5 || db.Unsupported() != 0 || db.UpdatedAt().Format("2006-01-02") != "2024-03-11" {
		t.Fatalf("loaded %d advisories (%d unsupported), updated %s", db.Len(), db.Unsupported(), db.UpdatedAt())
	}
	tests := []struct {
		eco, name, version string
		want               string // "ID fix severity", "" none
	}{
		{"Debian:12", "openssl", "3.0.11-1~deb12u2", "BERTH-SAMPLE-2024-0001 3.0.13-1~deb12u1 High"},
		{"Debian:12", "openssl", "3.0.13-1~deb12u1", ""},
		{"Debian:12", "openssl", "3.0.13-1~deb12u0", "BERTH-SAMPLE-2024-0001 3.0.13-1~deb12u1 High"},
		{"Debian:11", "openssl", "1.1.1n-0+deb11u5", ""}, // another release
		{"Debian:12", "zlib", "1:1.2.13.dfsg-1", ""},
		{"Debian:12", "zlib", "1.2.13.dfsg-1", "BERTH-SAMPLE-2024-0002 1:1.2.13.dfsg-1 Critical"}, // epoch 0 is before epoch 1
		{"Debian:12", "bash", "5.2.15-2", "BERTH-SAMPLE-2024-0003  Low"},                          // last_affected: no fix known
		{"Debian:11", "bash", "5.1-2", "BERTH-SAMPLE-2024-0003  Low"},                             // "Debian" applies to every release
		{"Debian:12", "bash", "5.2.15-2+b2", ""},
		{"Debian:12", "bash", "4.4-5", ""}, // before introduced
		{"Debian:12", "base-files", "12.4+deb12u5", ""},
		{"Alpine:v3.19", "busybox", "1.36.1-r15", ""},
		{"Alpine:v3.19", "busybox", "1.36.1-r6", "BERTH-SAMPLE-2024-0101 1.36.1-r7 Medium"},
		{"Alpine:v3.19", "sqlite", "3.45.0_rc1-r0", "BERTH-SAMPLE-2024-0102 3.45.0-r0 Medium"},
		{"Alpine:v3.19", "sqlite", "3.45.0-r0", ""},
		{"Alpine:v3.18", "sqlite", "3.41.0-r0", ""},
		{"PyPI", "openssl", "1.0", ""},
	}
	for _, tc := range tests {
		fs, err := db.Match(tc.eco, tc.name, tc.version)
		if err != nil {
			t.Errorf("Match(%s, %s, %s): %v", tc.eco, tc.name, tc.version, err)
			continue
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.Advisory.ID+" "+f.FixVersion+" "+f.Severity)
		}
		if strings.Join(got, "; ") != tc.want {
			t.Errorf("Match(%s, %s, %s) = %q, want %q", tc.eco, tc.name, tc.version, got, tc.want)
		}
	}
	fs, _ := db.Match("Debian:12", "openssl", "3.0.11-1~deb12u2")
	if f := fs[0]; f.ScoreV3 == nil || *f.ScoreV3 != 7.5 || f.VectorV3 == "" || strings.Join(f.CWEIDs, ",") != "CWE-400" {
		t.Fatalf("CVSS and CWE of the finding: %+v", f)
	}
	if _, err := db.Match("Debian:12", "openssl", "not a version"); err == nil {
		t.Fatal("a version dpkg cannot read matched")
	}
}

func TestRanges(t *testing.T) {
	t.Parallel()
	doc := `{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"p"},
	  "versions":["0.5-1"],
	  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0-1"},{"fixed":"2.5-1"},{"introduced":"1.0-1"},{"fixed":"1.5-1"},{"introduced":"3.0-1"}]},
	            {"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`
	db, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]string{
		"0.4-1": "-", "0.5-1": "", "1.0-1": "1.5-1", "1.4-9": "1.5-1", "1.5-1": "-", "1.9-1": "-",
		"2.0-1": "2.5-1", "2.5-1": "-", "3.0-1": "", "9.0-1": "",
	} {
		fs, err := db.Match("Debian:12", "p", v)
		switch {
		case err != nil:
			t.Errorf("%s: %v", v, err)
		case want == "-" && len(fs) != 0:
			t.Errorf("%s is affected, want not", v)
		case want != "-" && (len(fs) != 1 || fs[0].FixVersion != want):
			t.Errorf("%s: %+v, want affected with fix %q", v, fs, want)
		}
	}
}

func TestCVSS3Score(t *testing.T) {
	t.Parallel()
	for vector, want := range map[string]float64{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H": 9.8,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H": 10.0,
		"CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N": 5.5,
		"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N": 3.1,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H": 7.5,
		"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N": 6.4,
		"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N": 0,
	} {
		got, ok := CVSS3Score(vector)
		if !ok || got != want {
			t.Errorf("CVSS3Score(%s) = %v, %v, want %v", vector, got, ok, want)
		}
	}
	for _, bad := range []string{"", "AV:N/AC:L", "CVSS:2.0/AV:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H"} {
		if _, ok := CVSS3Score(bad); ok {
			t.Errorf("CVSS3Score(%q) is ok", bad)
		}
	}
	for score, want := range map[float64]string{0: "Negligible", 0.1: "Low", 3.9: "Low", 4: "Medium", 6.9: "Medium", 7: "High", 8.9: "High", 9: "Critical", 10: "Critical"} {
		if got := CVSS3Rating(score); got != want {
			t.Errorf("CVSS3Rating(%v) = %s, want %s", score, got, want)
		}
	}
}

func TestSeverityWords(t *testing.T) {
	t.Parallel()
	for w, want := range map[string]string{"HIGH": "High", "moderate": "Medium", "important": "High", "unimportant": "Negligible",
		"not yet assigned": "Unknown", "low*": "Low", "critical": "Critical", "bogus": ""} {
		if got := severityWord(w); got != want {
			t.Errorf("severityWord(%q) = %q, want %q", w, got, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing path loaded")
	}
	bad := write("bad.json", "{not json")
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "bad.json is not an OSV advisory") {
		t.Fatalf("Load(bad) = %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("Load(dir with bad) = %v", err)
	}
	noID := write("noid.json", `[{"modified":"x"}]`)
	if _, err := Load(noID); err == nil || !strings.Contains(err.Error(), "advisory 0 has no id") {
		t.Fatalf("Load(noid) = %v", err)
	}
	other := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(other, []byte(`{"id":"P-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"x"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Load(other)
	if err != nil || db.Len() != 1 || db.Unsupported() != 1 {
		t.Fatalf("Load(one file) = %+v, %v", db, err)
	}
}
