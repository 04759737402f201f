package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one fault's result.
type row struct {
	fault   string
	what    string
	t       tally
	verdict string
	took    time.Duration
	notes   []string
	defects []string
	err     string
}

// Verdicts. FAIL and ERROR fail the suite; DEFECT and LOSS-EXPECTED are
// shown and do not.
const (
	verdictOK       = "ok"
	verdictFail     = "FAIL"
	verdictDefect   = "DEFECT"
	verdictExpected = "LOSS-EXPECTED"
	verdictSkip     = "SKIP"
	verdictError    = "ERROR"
	// verdictInterrupted: Ctrl-C during the fault; its figures mean nothing.
	verdictInterrupted = "INTERRUPTED"
)

// judge returns a row's verdict: FAIL for a lost job (unless the fault
// allows loss) or a job run twice at once; ERROR when the fault could not
// be run; DEFECT for hooks missing or wrong, or any other defect seen;
// LOSS-EXPECTED for loss a fault allows.
func judge(t tally, lossAllowed bool, defects []string, skipped bool, err string) string {
	switch {
	case skipped:
		return verdictSkip
	case t.Twice > 0 || (t.Lost > 0 && !lossAllowed):
		return verdictFail
	case err != "":
		return verdictError
	case t.HooksMissing > 0 || t.HooksWrong > 0 || len(defects) > 0:
		return verdictDefect
	case t.Lost > 0:
		return verdictExpected
	}
	return verdictOK
}

// failed tells whether a verdict fails the suite.
func failed(v string) bool { return v == verdictFail || v == verdictError }

// recoverText is the recovery column: the time, or "never" when some job
// did not settle by the deadline.
func recoverText(t tally) string {
	if !t.Recovered {
		return "never"
	}
	return fmtDuration(t.Recover)
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}

// printTable writes the table and, under it, each fault's notes.
func printTable(w io.Writer, rows []row, bound time.Duration) {
	// Right-aligned numbers; names padded to one width read left-aligned.
	width := len("fault")
	for _, r := range rows {
		width = max(width, len(r.fault))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len(s)) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, pad("fault")+"\tsubmitted\trefused\tcompleted\tlost\ttwice at once\thooks missing\trecover\ttook\tverdict\t")
	for _, r := range rows {
		if r.verdict == verdictSkip {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t%s\t%s\t\n", pad(r.fault), fmtDuration(r.took), r.verdict)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", pad(r.fault), r.t.Submitted, r.t.Refused, r.t.Completed,
			r.t.Lost, r.t.Twice, r.t.HooksMissing, recoverText(r.t), fmtDuration(r.took), r.verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nlost: accepted (202) and not final at the API %s after recovery; twice at once: a PROBE job with two runs\n"+
		"alive at the same time (plugin reports); hooks missing: final at the API, no final hook received by then.\n", fmtDuration(bound))
	for _, r := range rows {
		fmt.Fprintf(w, "\n%s: %s\n", r.fault, r.what)
		if r.err != "" {
			fmt.Fprintf(w, "  error: %s\n", r.err)
		}
		if r.verdict != verdictSkip && r.err == "" {
			fmt.Fprintf(w, "  %d succeeded, %d PROBE jobs", r.t.Succeeded, r.t.Probed)
			if r.t.Gone > 0 {
				fmt.Fprintf(w, ", %d of the lost gone from Redis (404)", r.t.Gone)
			}
			if r.t.OverlapMax > 0 {
				fmt.Fprintf(w, ", longest overlap %s", fmtDuration(r.t.OverlapMax))
			}
			if r.t.Recovered && r.t.Recover > 5*time.Second {
				fmt.Fprintf(w, ", the last to settle: %s", r.t.Slowest)
			}
			if r.t.Strays > 0 {
				fmt.Fprintf(w, ", %d hooks or reports of jobs it did not submit", r.t.Strays)
			}
			if r.t.HooksWrong > 0 {
				fmt.Fprintf(w, ", %d whose last hook is not their final status", r.t.HooksWrong)
			}
			fmt.Fprintln(w)
		}
		if r.t.Refused > 0 {
			fmt.Fprintf(w, "  %d submissions refused; the first: %s\n", r.t.Refused, r.t.Refusal)
		}
		for _, n := range r.notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
		for _, d := range r.defects {
			fmt.Fprintf(w, "  defect: %s\n", d)
		}
	}
}

// summary is the last line: the verdict of the suite.
func summary(rows []row) (string, bool) {
	var bad []string
	for _, r := range rows {
		if failed(r.verdict) {
			bad = append(bad, r.fault)
		}
	}
	if len(bad) > 0 {
		return "chaos: FAIL (" + strings.Join(bad, ", ") + ")", false
	}
	return fmt.Sprintf("chaos: ok (%d faults; no job lost or run twice at once)", len(rows)), true
}
