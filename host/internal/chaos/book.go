package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/host/client"
)

// book is what one fault's run observed: the jobs the API accepted, the
// status the API last showed for each, the status hooks that reached the
// receiver and the runs the PROBE plugin reported. It is safe for
// concurrent use; Tally turns it into a row of the table.
type book struct {
	mu      sync.Mutex
	jobs    map[string]*jobSeen
	order   []string
	refused int
	refusal string // the first refusal, for the notes
	runs    map[string]*runSeen
	// early holds hooks that came before the submission's answer was
	// read; accept applies them. What is left at the end are hooks of
	// jobs this fault did not submit.
	early  map[string][]earlyHook
	strays int // probe reports of jobs this fault did not submit
}

type earlyHook struct {
	status client.Status
	at     time.Time
}

// jobSeen is one accepted job.
type jobSeen struct {
	id, name string
	accepted time.Time
	// status is the last status the API showed; final is set once it was
	// final (finalAt: when it was first seen so).
	status  client.Status
	final   bool
	finalAt time.Time
	// gone: the API answered 404 for a job it had accepted.
	gone bool
	// hookAt is when a hook first reported each status; lastHook is
	// the status of the last hook received.
	hookAt   map[client.Status]time.Time
	lastHook client.Status
	hooks    int
}

// runSeen is one run of a PROBE job, as its plugin reported it: it was
// alive from start to last (its end, or else its last beat).
type runSeen struct {
	job, run    string
	pid         int
	start, last time.Time
	ended       bool
}

func newBook() *book {
	return &book{jobs: map[string]*jobSeen{}, runs: map[string]*runSeen{}, early: map[string][]earlyHook{}}
}

// accept records a job the API answered 202 for.
func (b *book) accept(id, name string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.jobs[id]; ok {
		return
	}
	j := &jobSeen{id: id, name: name, accepted: at}
	b.jobs[id] = j
	b.order = append(b.order, id)
	for _, h := range b.early[id] {
		j.addHook(h.status, h.at)
	}
	delete(b.early, id)
}

// refuse records a submission the API did not accept (an error answer or
// no answer): not a job, so never lost.
func (b *book) refuse(why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refused++
	if b.refusal == "" {
		b.refusal = why
	}
}

// status records what the API showed for a job at a time.
func (b *book) status(id string, s client.Status, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.jobs[id]
	if j == nil {
		return
	}
	j.status, j.gone = s, false
	switch {
	case !s.Final():
		j.final, j.finalAt = false, time.Time{}
	case !j.final:
		j.final, j.finalAt = true, at
	}
}

// missing records a 404 for an accepted job.
func (b *book) missing(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if j := b.jobs[id]; j != nil {
		j.gone = true
	}
}

// hook records a status hook call.
func (b *book) hook(id string, s client.Status, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.jobs[id]
	if j == nil {
		if len(b.early) < 100000 {
			b.early[id] = append(b.early[id], earlyHook{s, at})
		}
		return
	}
	j.addHook(s, at)
}

func (j *jobSeen) addHook(s client.Status, at time.Time) {
	j.hooks++
	j.lastHook = s
	if j.hookAt == nil {
		j.hookAt = map[client.Status]time.Time{}
	}
	if _, ok := j.hookAt[s]; !ok {
		j.hookAt[s] = at
	}
}

// finalHook returns when a hook reported the job's final status (as the
// API shows it), if one did.
func (j *jobSeen) finalHook() (time.Time, bool) {
	at, ok := j.hookAt[j.status]
	return at, ok && j.final
}

// probe records a PROBE report: kind is start, beat or end.
func (b *book) probe(kind, job, run string, pid int, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.jobs[job]; !ok {
		// A run can start before the submission's answer is read: keep it
		// all the same; Tally counts only submitted jobs.
		if kind != "start" {
			if _, ok := b.runs[job+" "+run]; !ok {
				b.strays++
				return
			}
		}
	}
	key := job + " " + run
	r := b.runs[key]
	if r == nil {
		r = &runSeen{job: job, run: run, pid: pid, start: at, last: at}
		b.runs[key] = r
	}
	if kind == "start" && at.Before(r.start) {
		r.start = at
	}
	if at.After(r.last) {
		r.last = at
	}
	if kind == "end" {
		r.ended = true
	}
}

// errorQuiet is how long a job must stay in Error before the suite
// takes it as final: the API shows a failed run waiting for its retry as
// Error too, and the hosts' retry backoff is at most 2 s (+25% jitter).
const errorQuiet = 5 * time.Second

// unsettled returns the accepted jobs that are not final at the API yet
// (or have no final hook yet, with hooks true), as of now.
func (b *book) unsettled(hooks bool, now time.Time) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, id := range b.order {
		j := b.jobs[id]
		_, hooked := j.finalHook()
		quiet := j.status != client.Error || now.Sub(j.finalAt) >= errorQuiet
		if !j.final || !quiet || j.gone || (hooks && !hooked) {
			out = append(out, id)
		}
	}
	return out
}

// ids returns every accepted job, in the order of acceptance.
func (b *book) ids() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.order...)
}

// endedSince counts the runs that ended after t.
func (b *book) endedSince(t time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.runs {
		if r.ended && r.last.After(t) {
			n++
		}
	}
	return n
}

// tally is one row of the table.
type tally struct {
	// Submitted: accepted (202). Refused: submissions not accepted.
	Submitted, Refused int
	Refusal            string // the first refusal
	// Completed: final at the API (Success, Error or Stopped); Succeeded
	// of them in Success.
	Completed, Succeeded int
	// Lost: accepted, and not final at the API by the deadline (gone
	// from Redis included); Gone of them answered 404.
	Lost, Gone int
	// Probed: PROBE jobs; Twice: jobs of them with two runs alive at once.
	Probed, Twice int
	// HooksMissing: final at the API and no hook with that status at the
	// receiver; HooksWrong: a hook with it came, but the last hook the
	// receiver got says otherwise.
	HooksMissing, HooksWrong int
	// Recovered tells whether every job settled (final, and its final
	// hook in); Recover is then the time from the fault's recovery to the
	// last job settled (0 if all settled before it).
	Recovered bool
	Recover   time.Duration
	// OverlapMax is the longest overlap of two runs of one job.
	OverlapMax time.Duration
	// Strays: hooks or probe reports of jobs not submitted by this fault.
	Strays int
	// Slowest names the job that settled last.
	Slowest string
}

// Tally computes the row: recoveredAt is when the fault ended (the
// faulty part back, or the kill for a kill). A job is lost when it is
// not final at the API at the time of the tally (the deadline).
func (b *book) tally(recoveredAt time.Time) tally {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := tally{Submitted: len(b.order), Refused: b.refused, Refusal: b.refusal, Recovered: true, Strays: b.strays + len(b.early)}
	var last time.Time
	byJob := map[string][]*runSeen{}
	for _, r := range b.runs {
		byJob[r.job] = append(byJob[r.job], r)
	}
	for _, id := range b.order {
		j := b.jobs[id]
		if j.name == probeJob {
			t.Probed++
		}
		switch {
		case j.gone:
			t.Lost++
			t.Gone++
			t.Recovered = false
			continue
		case !j.final:
			t.Lost++
			t.Recovered = false
			continue
		}
		t.Completed++
		if j.status == client.Success {
			t.Succeeded++
		}
		settled := j.finalAt
		if at, ok := j.finalHook(); ok {
			settled = at
			if j.lastHook != j.status {
				t.HooksWrong++
			}
		} else {
			t.HooksMissing++
			t.Recovered = false
		}
		if settled.After(last) {
			last = settled
			t.Slowest = fmt.Sprintf("%s %s, %s at the API %s after recovery (seen by polling), its final hook %s after (%d hooks)",
				j.name, j.id, j.status, signed(j.finalAt.Sub(recoveredAt)), signed(settled.Sub(recoveredAt)), j.hooks)
		}
	}
	for id, runs := range byJob {
		if _, ok := b.jobs[id]; !ok {
			continue
		}
		if d := maxOverlap(runs); d > 0 {
			t.Twice++
			t.OverlapMax = max(t.OverlapMax, d)
		}
	}
	if t.Recovered && last.After(recoveredAt) {
		t.Recover = last.Sub(recoveredAt)
	}
	return t
}

// maxOverlap returns the longest time two of the runs were alive at once
// (0 if none overlap). A run is alive from its start to its last report:
// a lower bound of its true end, so an overlap found is a real one.
func maxOverlap(runs []*runSeen) time.Duration {
	rs := append([]*runSeen(nil), runs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
	var best time.Duration
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if !rs[j].start.Before(rs[i].last) {
				break // sorted by start: no later run overlaps rs[i]
			}
			end := rs[i].last
			if rs[j].last.Before(end) {
				end = rs[j].last
			}
			best = max(best, end.Sub(rs[j].start))
		}
	}
	return best
}

// withStatus returns up to n jobs of name whose API status is s.
func (b *book) withStatus(name string, s client.Status, n int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, id := range b.order {
		if j := b.jobs[id]; j.name == name && j.final && j.status == s && len(out) < n {
			out = append(out, id)
		}
	}
	return out
}

// acceptedSince counts the jobs accepted after t.
func (b *book) acceptedSince(t time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, id := range b.order {
		if b.jobs[id].accepted.After(t) {
			n++
		}
	}
	return n
}

// liveJobs returns the jobs with a run alive on one of pids, reported
// after since and started before began.
func (b *book) liveJobs(pids []int, since, began time.Time) map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]bool{}
	for _, r := range b.runs {
		if !r.ended && r.last.After(since) && r.start.Before(began) && slices.Contains(pids, r.pid) {
			out[r.job] = true
		}
	}
	return out
}

// rerun tells whether one of jobs has a run started after t on a
// process other than pids.
func (b *book) rerun(jobs map[string]bool, pids []int, t time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.runs {
		if jobs[r.job] && r.start.After(t) && !slices.Contains(pids, r.pid) {
			return true
		}
	}
	return false
}

// runsAround describes the runs of jobs around a fault at t: how long
// the runs on pids (the faulty host's plugins) lived after t, and when
// the first run elsewhere started.
func (b *book) runsAround(jobs map[string]bool, pids []int, t time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var stale, fresh []time.Duration
	for _, r := range b.runs {
		if !jobs[r.job] {
			continue
		}
		if slices.Contains(pids, r.pid) && r.start.Before(t) {
			stale = append(stale, r.last.Sub(t))
		} else if r.start.After(t) {
			fresh = append(fresh, r.start.Sub(t))
		}
	}
	span := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "none"
		}
		slices.Sort(ds)
		if len(ds) == 1 {
			return "+" + fmtDuration(ds[0])
		}
		return "+" + fmtDuration(ds[0]) + "..+" + fmtDuration(ds[len(ds)-1])
	}
	return fmt.Sprintf("runs in flight at the fault lived until %s after it; their jobs ran again elsewhere from %s (%d runs)",
		span(stale), span(fresh), len(fresh))
}

// lostSpan says when, relative to the fault at t, the lost jobs were
// accepted, and what the API last showed of them.
func (b *book) lostSpan(t time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ds []time.Duration
	last := map[string]int{}
	for _, id := range b.order {
		j := b.jobs[id]
		if j.final && !j.gone {
			continue
		}
		ds = append(ds, j.accepted.Sub(t))
		switch {
		case j.gone:
			last["404"]++
		case j.status == "":
			last["never read"]++
		default:
			last[string(j.status)]++
		}
	}
	if len(ds) == 0 {
		return ""
	}
	slices.Sort(ds)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(last)) {
		parts = append(parts, fmt.Sprintf("%d %s", last[k], k))
	}
	return fmt.Sprintf("the lost jobs were accepted from %s to %s of the fault; the API last showed %s",
		signed(ds[0]), signed(ds[len(ds)-1]), strings.Join(parts, ", "))
}

func signed(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDuration(-d)
	}
	return "+" + fmtDuration(d)
}
