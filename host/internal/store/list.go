package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/job"
)

// hgetall reads the stats hashes of ids in one round trip; a missing one
// is an empty map.
func (s *Store) hgetall(conn redis.Conn, ids []string) ([]map[string]string, error) {
	for _, id := range ids {
		if err := conn.Send("HGETALL", s.keys.Stats(id)); err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(ids))
	for i := range ids {
		m, err := redis.StringMap(conn.Receive())
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// statsOf reads the stats of ids, skipping those that are gone.
func (s *Store) statsOf(conn redis.Conn, ids []string) ([]*job.Stats, error) {
	maps, err := s.hgetall(conn, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*job.Stats, 0, len(ids))
	for _, m := range maps {
		if len(m) == 0 {
			continue
		}
		r, err := parseMap(m)
		if err != nil {
			return nil, err
		}
		out = append(out, r.stats)
	}
	return out, nil
}

// Filter selects the jobs of a listing; an empty field selects all.
type Filter struct {
	Kind   job.Kind
	Status job.Status
	// Names are the job names to list; empty lists every name the store
	// knows (known_jobs).
	Names []string
}

// cursorTies is how many ties a cursor can skip: a cursor is the score
// (ms) of the page's last job times cursorTies, plus how many jobs with
// that score were listed already. It fits an int64 until the year 2262,
// as Harbor's cursors must.
const cursorTies = 1_000_000

// maxListRounds bounds how often List looks again for jobs to fill a page
// after finding index entries whose stats have expired.
const maxListRounds = 8

// maxEmptyRounds bounds the rounds of a page that has found nothing yet:
// a page is not answered empty with a cursor while rounds remain. Each
// round drops the gone entries it read, so a later listing is faster.
const maxEmptyRounds = 256

// List returns up to size jobs of the filter, newest submission first,
// from cursor (0 or "": the start), and the cursor of the next page ("0"
// when there is none). It reads the listing indices, so a page is full
// unless the listing ends: index entries whose stats expired are dropped
// on the way and more jobs are read in their place.
func (s *Store) List(ctx context.Context, f Filter, cursor int64, size int) ([]*job.Stats, int64, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list jobs: %w", err)
	}
	defer conn.Close()
	keys, err := s.indexKeys(ctx, conn, f)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list jobs: %w", err)
	}
	max, skip := "+inf", int64(0)
	var top int64 = -1
	if cursor > 0 {
		top, skip = cursor/cursorTies, cursor%cursorTies
		max = strconv.FormatInt(top, 10)
	}
	for round := 0; ; round++ {
		cands, more, err := s.candidates(conn, keys, max, top, skip, size)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list jobs: %w", err)
		}
		ids := make([]string, len(cands))
		for i, c := range cands {
			ids[i] = c.id
		}
		maps, err := s.hgetall(conn, ids)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list jobs: %w", err)
		}
		out := make([]*job.Stats, 0, len(cands))
		gone := 0
		for i, m := range maps {
			if len(m) == 0 {
				gone++
				_ = conn.Send("ZREM", cands[i].key, cands[i].id)
				continue
			}
			r, err := parseMap(m)
			if err != nil {
				return nil, 0, fmt.Errorf("store: list jobs: %w", err)
			}
			out = append(out, r.stats)
		}
		if gone > 0 {
			if err := conn.Flush(); err != nil {
				return nil, 0, fmt.Errorf("store: list jobs: %w", err)
			}
			for range gone {
				if _, err := conn.Receive(); err != nil {
					return nil, 0, fmt.Errorf("store: list jobs: %w", err)
				}
			}
			if round < maxListRounds || len(out) == 0 && round < maxEmptyRounds {
				continue // the same cursor again, without the entries that are gone
			}
		}
		next := int64(0)
		if more && len(cands) > 0 {
			last := cands[len(cands)-1].score
			n := int64(0)
			for _, c := range cands {
				if c.score == last {
					n++
				}
			}
			if last == top {
				n += skip
			}
			next = last*cursorTies + min(n, cursorTies-1)
		}
		return out, next, nil
	}
}

// indexKeys lists the indices a filter reads.
func (s *Store) indexKeys(ctx context.Context, conn redis.Conn, f Filter) ([]string, error) {
	names := f.Names
	if len(names) == 0 {
		var err error
		if names, err = redis.Strings(redis.DoContext(conn, ctx, "SMEMBERS", s.keys.KnownJobs())); err != nil {
			return nil, err
		}
	}
	kinds, statuses := job.Kinds, job.Statuses
	if f.Kind != "" {
		kinds = []job.Kind{f.Kind}
	}
	if f.Status != "" {
		statuses = []job.Status{f.Status}
	}
	var keys []string
	for _, n := range names {
		for _, k := range kinds {
			for _, st := range statuses {
				keys = append(keys, s.keys.Index(k, st, n))
			}
		}
	}
	return keys, nil
}

// candidate is an index entry.
type candidate struct {
	key, id string
	score   int64
}

// candidates reads up to size entries from the indices, newest first,
// scored at most max, leaving out the first skip entries scored top (they
// were listed already). more tells whether entries are left after them.
func (s *Store) candidates(conn redis.Conn, keys []string, max string, top, skip int64, size int) ([]candidate, bool, error) {
	for _, k := range keys {
		if err := conn.Send("ZREVRANGEBYSCORE", k, max, "-inf", "WITHSCORES", "LIMIT", 0, skip+int64(size)+1); err != nil {
			return nil, false, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, false, err
	}
	var all []candidate
	for _, k := range keys {
		v, err := redis.Strings(conn.Receive())
		if err != nil {
			return nil, false, err
		}
		for i := 0; i+1 < len(v); i += 2 {
			sc, _ := strconv.ParseInt(v[i+1], 10, 64)
			all = append(all, candidate{key: k, id: v[i], score: sc})
		}
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].score != all[b].score {
			return all[a].score > all[b].score
		}
		return all[a].id > all[b].id
	})
	i := 0
	for skipped := int64(0); i < len(all) && skipped < skip && all[i].score == top; i++ {
		skipped++
	}
	all = all[i:]
	if len(all) > size {
		return all[:size], true, nil
	}
	return all, false, nil
}

// PruneIndex drops from the listing indices of final statuses the entries
// of jobs whose stats have expired, oldest first, looking at up to budget
// entries; it returns how many it dropped.
func (s *Store) PruneIndex(ctx context.Context, budget int) (int, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	const batch = 200
	dropped, looked := 0, 0
	for _, st := range []job.Status{job.Success, job.Stopped, job.Error} {
		keys, err := s.indexKeys(ctx, conn, Filter{Status: st})
		if err != nil {
			return dropped, fmt.Errorf("store: prune listing indices: %w", err)
		}
		for _, k := range keys {
			for offset := 0; looked < budget; {
				ids, err := redis.Strings(redis.DoContext(conn, ctx, "ZRANGE", k, offset, offset+batch-1))
				if err != nil {
					return dropped, fmt.Errorf("store: prune %s: %w", k, err)
				}
				looked += len(ids)
				maps, err := s.exists(conn, ids)
				if err != nil {
					return dropped, fmt.Errorf("store: prune %s: %w", k, err)
				}
				var gone []any
				for i, ok := range maps {
					if !ok {
						gone = append(gone, ids[i])
					}
				}
				if len(gone) > 0 {
					if _, err := redis.DoContext(conn, ctx, "ZREM", append([]any{k}, gone...)...); err != nil {
						return dropped, fmt.Errorf("store: prune %s: %w", k, err)
					}
					dropped += len(gone)
				}
				// Stats expire roughly in index order: once a batch of the
				// oldest entries is all alive, this index is done.
				if len(gone) == 0 || len(ids) < batch {
					break
				}
				offset += len(ids) - len(gone)
			}
		}
	}
	return dropped, nil
}

// exists tells, for each of ids, whether its stats exist.
func (s *Store) exists(conn redis.Conn, ids []string) ([]bool, error) {
	for _, id := range ids {
		if err := conn.Send("EXISTS", s.keys.Stats(id)); err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	for i := range ids {
		n, err := redis.Int(conn.Receive())
		if err != nil {
			return nil, err
		}
		out[i] = n == 1
	}
	return out, nil
}

// ListScheduled returns page (from 1) of the jobs waiting for their run
// time, soonest first, and how many there are.
func (s *Store) ListScheduled(ctx context.Context, page, size int) ([]*job.Stats, int64, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	defer conn.Close()
	start := (page - 1) * size
	_ = conn.Send("ZCARD", s.keys.Scheduled())
	_ = conn.Send("ZRANGE", s.keys.Scheduled(), start, start+size-1)
	_ = conn.Flush()
	total, err := redis.Int64(conn.Receive())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	entries, err := redis.Strings(conn.Receive())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		var w struct {
			ID   string         `json:"id"`
			Args map[string]any `json:"args"`
		}
		if json.Unmarshal([]byte(e), &w) == nil && job.ValidID(JobIDOf(w.ID, w.Args)) {
			ids = append(ids, JobIDOf(w.ID, w.Args))
		}
	}
	out, err := s.statsOf(conn, ids)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list scheduled jobs: %w", err)
	}
	return out, total, nil
}

// ListPolicies returns the active periodic policies, oldest first.
func (s *Store) ListPolicies(ctx context.Context) ([]*job.Stats, error) {
	ps, err := s.Policies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*job.Stats, len(ps))
	for i, p := range ps {
		out[i] = p.Stats
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].EnqueueTime != out[b].EnqueueTime {
			return out[a].EnqueueTime < out[b].EnqueueTime
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

// Executions returns the executions of a job (a periodic policy's runs or
// a job's sub-jobs), newest first. Their number is bounded by the store's
// MaxExecutions, so they are read whole.
func (s *Store) Executions(ctx context.Context, id string) ([]*job.Stats, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: executions of %s: %w", id, err)
	}
	defer conn.Close()
	ids, err := redis.Strings(redis.DoContext(conn, ctx, "ZREVRANGE", s.keys.Executions(id), 0, -1))
	if err != nil {
		return nil, fmt.Errorf("store: executions of %s: %w", id, err)
	}
	out, err := s.statsOf(conn, ids)
	if err != nil {
		return nil, fmt.Errorf("store: executions of %s: %w", id, err)
	}
	return out, nil
}

// HasExecutions tells whether a job has executions.
func (s *Store) HasExecutions(ctx context.Context, id string) (bool, error) {
	conn, err := s.pool.GetContext(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	n, err := redis.Int(redis.DoContext(conn, ctx, "EXISTS", s.keys.Executions(id)))
	return n == 1, err
}
