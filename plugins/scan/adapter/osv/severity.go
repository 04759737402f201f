package osv

import (
	"math"
	"strings"

	"github.com/berth-dev/berth/plugins/scan/scanapi"
)

// severityOf rates a finding: the CVSS v3 base score of the affected
// package's or the advisory's vector, else a severity word.
func severityOf(a *Advisory, aff *Affected) (string, *float64, string) {
	for _, list := range [][]Severity{aff.Severity, a.Severity} {
		for _, s := range list {
			if s.Type != "CVSS_V3" {
				continue
			}
			if score, ok := CVSS3Score(s.Score); ok {
				return CVSS3Rating(score), &score, s.Score
			}
		}
	}
	for _, m := range []map[string]any{aff.EcosystemSpecific, aff.DatabaseSpecific, a.DatabaseSpecific} {
		for _, k := range []string{"severity", "urgency"} {
			if w, ok := m[k].(string); ok {
				if s := severityWord(w); s != "" {
					return s, nil, ""
				}
			}
		}
	}
	return scanapi.SeverityUnknown, nil, ""
}

// severityWord reads the words advisory databases use (GitHub's
// moderate, Red Hat's important, Debian's urgencies).
func severityWord(w string) string {
	switch strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(w), "*"))) {
	case "critical":
		return scanapi.SeverityCritical
	case "high", "important":
		return scanapi.SeverityHigh
	case "medium", "moderate":
		return scanapi.SeverityMedium
	case "low":
		return scanapi.SeverityLow
	case "negligible", "unimportant", "none":
		return scanapi.SeverityNegligible
	case "unknown", "not yet assigned":
		return scanapi.SeverityUnknown
	}
	return ""
}

// CVSS3Rating rates a CVSS v3 base score as the specification does; its
// None (0.0) is the scanner API's Negligible.
func CVSS3Rating(score float64) string {
	switch {
	case score >= 9.0:
		return scanapi.SeverityCritical
	case score >= 7.0:
		return scanapi.SeverityHigh
	case score >= 4.0:
		return scanapi.SeverityMedium
	case score >= 0.1:
		return scanapi.SeverityLow
	}
	return scanapi.SeverityNegligible
}

// CVSS3Score computes the base score of a CVSS v3.0 or v3.1 vector
// ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" is 9.8). ok is false for
// a vector that lacks a base metric or has a value the specification does
// not define.
func CVSS3Score(vector string) (score float64, ok bool) {
	parts := strings.Split(strings.TrimSpace(vector), "/")
	if len(parts) == 0 || !strings.HasPrefix(parts[0], "CVSS:3.") {
		return 0, false
	}
	m := map[string]string{}
	for _, p := range parts[1:] {
		k, v, found := strings.Cut(p, ":")
		if !found {
			return 0, false
		}
		m[k] = v
	}
	pick := func(metric string, values map[string]float64) (float64, bool) {
		v, ok := values[m[metric]]
		return v, ok
	}
	scope := m["S"]
	if scope != "U" && scope != "C" {
		return 0, false
	}
	pr := map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}
	if scope == "C" {
		pr = map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5}
	}
	cia := map[string]float64{"H": 0.56, "L": 0.22, "N": 0}
	av, ok1 := pick("AV", map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2})
	ac, ok2 := pick("AC", map[string]float64{"L": 0.77, "H": 0.44})
	p, ok3 := pick("PR", pr)
	ui, ok4 := pick("UI", map[string]float64{"N": 0.85, "R": 0.62})
	c, ok5 := pick("C", cia)
	i, ok6 := pick("I", cia)
	a, ok7 := pick("A", cia)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return 0, false
	}
	iss := 1 - (1-c)*(1-i)*(1-a)
	impact := 6.42 * iss
	if scope == "C" {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	}
	if impact <= 0 {
		return 0, true
	}
	expl := 8.22 * av * ac * p * ui
	if scope == "U" {
		return roundUp(math.Min(impact+expl, 10)), true
	}
	return roundUp(math.Min(1.08*(impact+expl), 10)), true
}

// roundUp is CVSS 3.1's Roundup: the smallest number of one decimal at or
// above x, computed on integers to avoid floating-point surprises.
func roundUp(x float64) float64 {
	n := int64(math.Round(x * 100000))
	if n%10000 == 0 {
		return float64(n) / 100000
	}
	return float64(n/10000+1) / 10
}
