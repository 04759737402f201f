package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// options are what a collection is asked to do.
type options struct {
	deleteUntagged bool
	dryRun         bool
	workers        int
	// cutoff: a blob, link or manifest written after it is kept.
	cutoff time.Time
}

// manifestItem is a manifest revision to delete, with the tag index
// entries that name it.
type manifestItem struct {
	repo      string
	digest    digest.Digest
	tagsIndex []string // tags whose index records the digest
}

// layerItem is a layer link to delete.
type layerItem struct {
	repo   string
	digest digest.Digest
}

// plan is what a sweep deletes, in order: manifest revisions, layer
// links, then blob data, so that no link is ever left to a blob that is
// gone.
type plan struct {
	manifests []manifestItem
	layers    []layerItem
	blobs     []blobInfo
	// marked is how many digests the mark reached.
	marked int
	// kept is how many blobs the time window kept.
	keptRecent int
}

// freeable is the size of the blob data of the plan.
func (p *plan) freeable() int64 {
	var n int64
	for _, b := range p.blobs {
		n += b.size
	}
	return n
}

// progress reports how far a phase has got.
type progress func(phase string, done, total int)

// collector marks and plans over one store.
type collector struct {
	s        store
	opts     options
	progress progress
}

// scan reads every repository (with workers at once) and the blob store.
func (c *collector) scan(ctx context.Context) ([]*repository, map[digest.Digest]blobInfo, error) {
	names, err := c.s.repositories(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list the repositories: %w", err)
	}
	sort.Strings(names)
	repos := make([]*repository, len(names))
	var mu sync.Mutex
	done := 0
	c.progress("scan", 0, len(names))
	err = parallel(ctx, c.opts.workers, len(names), func(i int) error {
		r, err := c.s.repository(ctx, names[i])
		if err != nil {
			return err
		}
		repos[i] = r
		mu.Lock()
		done++
		n := done
		mu.Unlock()
		c.progress("scan", n, len(names))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	blobs, err := c.s.blobs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list the blobs: %w", err)
	}
	return repos, blobs, nil
}

// recent reports whether t is after the cutoff: kept by the time window.
func (c *collector) recent(t time.Time) bool { return t.After(c.opts.cutoff) }

// mark returns every digest reachable from the roots of every repository:
// with deleteUntagged, the manifests a tag points at and the manifests
// newer than the time window; without, every manifest revision. From each
// root it marks the config and layers and, for an index, its children,
// following a child that is a revision of the same repository.
func (c *collector) mark(ctx context.Context, repos []*repository) (map[digest.Digest]bool, error) {
	type node struct {
		repo *repository
		d    digest.Digest
	}
	marked := map[digest.Digest]bool{}
	visited := map[string]bool{} // repo@digest of the manifests read
	var level []node
	visit := func(r *repository, d digest.Digest) {
		key := r.name + "@" + d.String()
		if visited[key] {
			return
		}
		visited[key] = true
		level = append(level, node{r, d})
	}
	for _, r := range repos {
		roots := map[digest.Digest]bool{}
		if c.opts.deleteUntagged {
			for _, d := range r.tags {
				if _, ok := r.revisions[d]; ok {
					roots[d] = true
				}
			}
			for d, l := range r.revisions {
				if c.recent(l.modTime) {
					roots[d] = true
				}
			}
		} else {
			for d := range r.revisions {
				roots[d] = true
			}
		}
		for _, d := range sortedDigests(roots) {
			marked[d] = true
			visit(r, d)
		}
	}
	total, done := len(level), 0
	c.progress("mark", 0, total)
	for len(level) > 0 {
		current := level
		level = nil
		refs := make([][2][]digest.Digest, len(current))
		var mu sync.Mutex
		err := parallel(ctx, c.opts.workers, len(current), func(i int) error {
			blobs, children, err := c.s.manifestRefs(ctx, current[i].d)
			if err != nil {
				return fmt.Errorf("mark %s: %w", current[i].repo.name, err)
			}
			refs[i] = [2][]digest.Digest{blobs, children}
			mu.Lock()
			done++
			n := done
			mu.Unlock()
			c.progress("mark", n, total)
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, n := range current {
			for _, d := range refs[i][0] {
				marked[d] = true
			}
			for _, d := range refs[i][1] {
				marked[d] = true
				if _, ok := n.repo.revisions[d]; ok {
					visit(n.repo, d)
				}
			}
		}
		total += len(level)
	}
	return marked, nil
}

// makePlan decides what to delete: every manifest revision, layer link
// and blob the mark did not reach, unless the time window keeps it.
func (c *collector) makePlan(repos []*repository, blobs map[digest.Digest]blobInfo, marked map[digest.Digest]bool) *plan {
	p := &plan{marked: len(marked)}
	// A blob a recent link names is kept with the link: a push in
	// progress has linked it and not yet put the manifest that uses it.
	recentLink := map[digest.Digest]bool{}
	for _, r := range repos {
		for d, l := range r.revisions {
			if c.recent(l.modTime) {
				recentLink[d] = true
			}
		}
		for d, l := range r.layers {
			if c.recent(l.modTime) {
				recentLink[d] = true
			}
		}
	}
	for _, r := range repos {
		for _, d := range sortedDigests(r.revisions) {
			if marked[d] || recentLink[d] {
				continue
			}
			m := manifestItem{repo: r.name, digest: d}
			for _, tag := range sortedKeys(r.tags) {
				m.tagsIndex = append(m.tagsIndex, tag)
			}
			p.manifests = append(p.manifests, m)
		}
		for _, d := range sortedDigests(r.layers) {
			if marked[d] || recentLink[d] {
				continue
			}
			p.layers = append(p.layers, layerItem{repo: r.name, digest: d})
		}
	}
	for _, d := range sortedDigests(blobs) {
		b := blobs[d]
		switch {
		case marked[d]:
		case recentLink[d] || c.recent(b.modTime):
			p.keptRecent++
		default:
			p.blobs = append(p.blobs, b)
		}
	}
	return p
}

// sortedDigests returns the keys of m in order.
func sortedDigests[V any](m map[digest.Digest]V) []digest.Digest {
	out := make([]digest.Digest, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parallel calls f(0) ... f(n-1) on at most workers goroutines and returns
// the first error; after an error or the end of ctx it starts no more
// calls.
func parallel(ctx context.Context, workers, n int, f func(i int) error) error {
	if workers < 1 {
		workers = 1
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil || next >= n {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			firstErr = context.Cause(ctx)
			return 0, false
		}
		i := next
		next++
		return i, true
	}
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
