package queue

import (
	"context"
	"encoding/json"
	"reflect"
	"time"

	"github.com/gocraft/work"
)

// Orphaned entries. gocraft/work's fetch moves a job's entry into its
// pool's in-progress list and takes a concurrency slot, in one script.
// When Redis applies the script but its reply is lost (Redis shut down
// right after, or the connection dropped), the worker sees an error and
// no handler ever runs the job: the entry stays in the list, and the job
// Pending, for as long as the pool lives, and for good once it stopped
// (the reaper recovers the lists of dead pools only, and a stopped
// generation is not listed at all). Measured: 1 job in about 12 runs of
// the chaos suite's Redis restart.
//
// The sweeper looks at the in-progress lists of every generation of this
// host, stopped ones included, after Redis came back (Sweep) and every
// SweepEvery: an entry that no handler of this host runs, seen in two
// sweeps at least OrphanAfter apart, goes back to the head of its queue
// and gives its slot back (store.RequeueOrphan).

// Defaults of Options.OrphanAfter and Options.SweepEvery.
const (
	DefaultOrphanAfter = 5 * time.Second
	DefaultSweepEvery  = time.Minute
)

// Sweep makes the sweeper look for orphaned entries now, and again once
// OrphanAfter has passed if it found any: the host calls it when its
// Redis connection came back. It never blocks.
func (p *Pool) Sweep() {
	select {
	case p.sweepNow <- struct{}{}:
	default:
	}
}

// sweeper sweeps until the pool stops.
func (p *Pool) sweeper() {
	defer close(p.sweeperDone)
	tick := time.NewTicker(p.opts.SweepEvery)
	defer tick.Stop()
	var again <-chan time.Time
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		case <-p.sweepNow:
		case <-again:
		}
		again = nil
		if p.sweep() > 0 {
			again = time.After(p.opts.OrphanAfter + p.opts.OrphanAfter/10)
		}
	}
}

// sweep makes one sweep and returns how many suspects it keeps.
func (p *Pool) sweep() int {
	type list struct {
		g        *generation
		inflight map[string]bool
	}
	p.mu.Lock()
	var lists []list
	seen := map[*generation]bool{}
	add := func(g *generation) {
		if g == nil || g.id == "" || seen[g] {
			return
		}
		seen[g] = true
		in := make(map[string]bool, len(g.inflight))
		for id := range g.inflight {
			in[id] = true
		}
		lists = append(lists, list{g, in})
	}
	add(p.cur)
	for g := range p.retiring {
		add(g)
	}
	for _, gs := range p.spare {
		for _, g := range gs {
			add(g)
		}
	}
	p.mu.Unlock()

	names := make([]string, len(p.opts.Types))
	for i, t := range p.opts.Types {
		names[i] = t.Name
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	still := map[suspect]time.Time{}
	for _, l := range lists {
		byName, err := p.st.InProgress(ctx, l.g.id, names)
		if err != nil {
			p.log.Debug("cannot read the in-progress lists of a worker pool", "pool", l.g.id, "error", err)
			// Keep its suspects for the next sweep.
			for k, at := range p.suspects {
				if k.pool == l.g.id {
					still[k] = at
				}
			}
			continue
		}
		for name, entries := range byName {
			for _, e := range entries {
				var head struct {
					ID string `json:"id"`
				}
				if json.Unmarshal([]byte(e), &head) == nil && l.inflight[head.ID] {
					continue
				}
				k := suspect{pool: l.g.id, name: name, entry: e}
				first, known := p.suspects[k]
				if !known {
					still[k] = now
					continue
				}
				if now.Sub(first) < p.opts.OrphanAfter {
					still[k] = first
					continue
				}
				moved, err := p.st.RequeueOrphan(ctx, l.g.id, name, e)
				switch {
				case err != nil:
					p.log.Warn("cannot queue again a job no worker runs", "pool", l.g.id, "job_name", name, "error", err)
					still[k] = first
				case moved:
					p.log.Warn("a job taken from its queue by a fetch whose answer Redis never sent was in no worker's hands; it is queued again",
						"pool", l.g.id, "job_name", name, "gocraft_id", head.ID, "since", first.UTC())
				}
			}
		}
	}
	p.suspects = still
	return len(still)
}

// suspect is an in-progress entry that no handler ran when a sweep saw
// it.
type suspect struct{ pool, name, entry string }

// poolIDOf returns the ID of a gocraft/work pool: v0.5.1 keeps it in an
// unexported field and exposes it nowhere else (TestPoolIDOf checks it).
func poolIDOf(wp *work.WorkerPool) string {
	f := reflect.ValueOf(wp).Elem().FieldByName("workerPoolID")
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}
