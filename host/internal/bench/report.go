package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// figure is one side (Berth or raw) of a measurement.
type figure struct {
	// Value is the headline: the median over runs of a rate, or the p99 of
	// a latency in ms.
	Value float64 `json:"value"`
	// PerRun holds each run's rate.
	PerRun []float64 `json:"per_run,omitempty"`
	// Latency holds percentiles (ms) of a latency.
	Latency *latencies `json:"latency,omitempty"`
	// Runs and PerRunCount: Runs runs of PerRunCount jobs (rates).
	Runs        int `json:"runs,omitempty"`
	PerRunCount int `json:"per_run_count,omitempty"`
	// Missing counts samples that never arrived (job not started in
	// time, lost report) or runs that failed.
	Missing int `json:"missing,omitempty"`
	// Seconds a rate was measured over (idle load).
	Seconds float64 `json:"seconds,omitempty"`
}

func rate(perRun []float64, count int) *figure {
	return &figure{Value: median(perRun), PerRun: perRun, Runs: len(perRun), PerRunCount: count}
}

func latency(ds []time.Duration, missing int) *figure {
	l := summarise(ds)
	return &figure{Value: l.P99, Latency: &l, Missing: missing}
}

// metric is one line of the table.
type metric struct {
	Part  int     `json:"part"`
	Key   string  `json:"key"`
	Label string  `json:"label"`
	Unit  string  `json:"unit"`
	Berth *figure `json:"berth,omitempty"`
	Raw   *figure `json:"raw,omitempty"`
	// Ratio is Berth's value over raw's (rates: medians; latencies: p99).
	Ratio *float64 `json:"ratio,omitempty"`
	// RatioNote, when set, replaces the printed ratio (e.g. a difference).
	RatioNote string `json:"ratio_note,omitempty"`
	Target    string `json:"target,omitempty"`
	Met       *bool  `json:"met,omitempty"`
}

// setRatio fills Ratio from the two figures.
func (m *metric) setRatio() {
	if m.Berth != nil && m.Raw != nil && m.Raw.Value > 0 && (m.Berth.Runs > 0 || m.Berth.Latency == nil || m.Berth.Latency.N > 0) {
		r := m.Berth.Value / m.Raw.Value
		m.Ratio = &r
	}
}

// judge records whether the target is met.
func (m *metric) judge(target string, ok bool) {
	m.Target = target
	m.Met = &ok
}

// partResult is how a part ended.
type partResult struct {
	Part    int      `json:"part"`
	Name    string   `json:"name"`
	Status  string   `json:"status"` // ok, failed, timeout, skipped
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"seconds"`
	Notes   []string `json:"notes,omitempty"`
}

// machine describes where the bench ran.
type machine struct {
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model,omitempty"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	Kernel       string `json:"kernel,omitempty"`
	RedisVersion string `json:"redis_version,omitempty"`
	// LoadAvgStart and LoadAvgEnd are /proc/loadavg (1, 5, 15 min).
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
}

// report is the JSON document of a run.
type report struct {
	Time      time.Time      `json:"time"`
	GoVersion string         `json:"go_version"`
	Commit    string         `json:"commit,omitempty"`
	Machine   machine        `json:"machine"`
	Settings  map[string]any `json:"settings"`
	Parts     []partResult   `json:"parts"`
	Metrics   []*metric      `json:"metrics"`
	Seconds   float64        `json:"seconds"`
}

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// print writes the table and each part's notes.
func (r *report) print(w io.Writer) {
	rows := [][]string{{"#", "measurement", "berth", "raw gocraft/work", "ratio", "count", "target", "result"}}
	for _, m := range r.Metrics {
		ratio := "-"
		switch {
		case m.RatioNote != "":
			ratio = m.RatioNote
		case m.Ratio != nil && *m.Ratio < 0.1:
			ratio = fmt.Sprintf("%.3fx", *m.Ratio)
		case m.Ratio != nil:
			ratio = fmt.Sprintf("%.2fx", *m.Ratio)
		}
		result := ""
		if m.Met != nil {
			result = "NOT MET"
			if *m.Met {
				result = "met"
			}
		}
		target := m.Target
		if target == "" && m.Berth == nil {
			target = "(baseline)"
		}
		rows = append(rows, []string{strconvI(m.Part), m.Label + " (" + m.Unit + ")",
			m.Berth.text(), m.Raw.text(), ratio, count(m), target, result})
	}
	for _, p := range r.Parts {
		if p.Status != "ok" {
			rows = append(rows, []string{strconvI(p.Part), "part " + p.Name + ": " + strings.ToUpper(p.Status) + " (see below)", "", "", "", "", "", ""})
		}
	}
	body := rows[1:]
	sort.SliceStable(body, func(i, j int) bool {
		a, _ := strconv.Atoi(body[i][0])
		b, _ := strconv.Atoi(body[j][0])
		return a < b
	})
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	for i, row := range rows {
		var b strings.Builder
		for j, c := range row {
			if j == len(row)-1 {
				b.WriteString(c)
				break
			}
			if j >= 2 && j <= 4 {
				fmt.Fprintf(&b, "%*s  ", widths[j], c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", widths[j], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if i == 0 {
			total := 0
			for _, wd := range widths {
				total += wd + 2
			}
			fmt.Fprintln(w, strings.Repeat("-", total))
		}
	}
	fmt.Fprintln(w)
	for _, p := range r.Parts {
		status := p.Status
		if p.Error != "" {
			status += ": " + p.Error
		}
		fmt.Fprintf(w, "part %d %s: %s (%.1fs)\n", p.Part, p.Name, status, p.Seconds)
		for _, n := range p.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
	}
}

// text is a figure in the table: a rate, "p50 / p99" of a latency, or a
// plain value.
func (f *figure) text() string {
	switch {
	case f == nil:
		return "-"
	case f.Latency != nil:
		if f.Latency.N == 0 {
			return "no samples"
		}
		return fmt.Sprintf("%s / %s", num(f.Latency.P50), num(f.Latency.P99))
	}
	return num(f.Value)
}

func count(m *metric) string {
	var parts []string
	for _, f := range []*figure{m.Berth, m.Raw} {
		switch {
		case f == nil:
		case f.Latency != nil:
			s := "n=" + strconvI(f.Latency.N)
			if f.Missing > 0 {
				s += fmt.Sprintf(" (%d lost)", f.Missing)
			}
			parts = append(parts, s)
		case f.Seconds > 0:
			parts = append(parts, fmt.Sprintf("%.0f s", f.Seconds))
		case f.Runs > 0:
			parts = append(parts, fmt.Sprintf("%dx%d", f.Runs, f.PerRunCount))
		}
	}
	if len(parts) == 2 && parts[0] == parts[1] {
		parts = parts[:1]
	}
	return strings.Join(parts, " | ")
}

// num prints a number with a sensible precision and thousands separators.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		s := fmt.Sprintf("%.0f", v)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func strconvI(i int) string { return strconv.Itoa(i) }
