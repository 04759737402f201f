package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/time/rate"
)

// result is Harbor's result of a garbage collection: the bytes of blob
// data freed, the blobs and the manifests deleted (on a dry run: what a
// run would free and delete).
type result struct {
	FreedSpace      int64 `json:"freed_space"`
	PurgedBlobs     int   `json:"purged_blobs"`
	PurgedManifests int   `json:"purged_manifests"`
}

// sweeper deletes what a plan names.
type sweeper struct {
	s        store
	workers  int
	limiter  *rate.Limiter // nil: deletes as fast as the storage takes them
	log      *slog.Logger
	progress progress

	mu   sync.Mutex
	res  result
	done int
}

// dryRun logs what a sweep of p would delete and returns what it would
// free, deleting nothing.
func (w *sweeper) dryRun(p *plan) result {
	for _, m := range p.manifests {
		w.log.Info("manifest eligible for deletion", "repository", m.repo, "digest", m.digest.String())
	}
	for _, l := range p.layers {
		w.log.Info("layer link eligible for deletion", "repository", l.repo, "digest", l.digest.String())
	}
	for _, b := range p.blobs {
		w.log.Info("blob eligible for deletion", "digest", b.digest.String(), "size", b.size)
	}
	return result{FreedSpace: p.freeable(), PurgedBlobs: len(p.blobs), PurgedManifests: len(p.manifests)}
}

// sweep deletes what p names: manifest revisions (with the tag index
// entries that name them), then layer links, then blob data, each phase
// with workers deletes at once. Before every delete it checks ctx: a stop
// or cancel ends the sweep between two deletes, and what was deleted so
// far is returned with the context's cause. Nothing a tag reaches is in a
// plan, so a sweep ended early leaves every tag served.
func (w *sweeper) sweep(ctx context.Context, p *plan) (result, error) {
	total := len(p.manifests) + len(p.layers) + len(p.blobs)
	w.progress("sweep", 0, total)
	step := func(f func() error) error {
		if w.limiter != nil {
			if err := w.limiter.Wait(ctx); err != nil {
				return context.Cause(ctx)
			}
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err := f(); err != nil {
			return err
		}
		w.mu.Lock()
		w.done++
		n := w.done
		w.mu.Unlock()
		w.progress("sweep", n, total)
		return nil
	}
	err := parallel(ctx, w.workers, len(p.manifests), func(i int) error {
		return step(func() error { return w.deleteManifest(ctx, p.manifests[i]) })
	})
	if err == nil {
		err = parallel(ctx, w.workers, len(p.layers), func(i int) error {
			return step(func() error { return w.deleteLayer(ctx, p.layers[i]) })
		})
	}
	if err == nil {
		err = parallel(ctx, w.workers, len(p.blobs), func(i int) error {
			return step(func() error { return w.deleteBlob(ctx, p.blobs[i]) })
		})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.res, err
}

func (w *sweeper) deleteManifest(ctx context.Context, m manifestItem) error {
	for _, tag := range m.tagsIndex {
		if _, err := w.s.deleteDir(ctx, tagIndexEntry(m.repo, tag, m.digest)); err != nil {
			return fmt.Errorf("delete the index entry of tag %s:%s for %s: %w", m.repo, tag, m.digest, err)
		}
	}
	gone, err := w.s.deleteDir(ctx, revisionDir(m.repo, m.digest))
	if err != nil {
		return fmt.Errorf("delete manifest %s@%s: %w", m.repo, m.digest, err)
	}
	if gone {
		return nil
	}
	w.mu.Lock()
	w.res.PurgedManifests++
	w.mu.Unlock()
	w.log.Info("deleted manifest", "repository", m.repo, "digest", m.digest.String())
	return nil
}

func (w *sweeper) deleteLayer(ctx context.Context, l layerItem) error {
	gone, err := w.s.deleteDir(ctx, layerLinkDir(l.repo, l.digest))
	if err != nil {
		return fmt.Errorf("delete layer link %s@%s: %w", l.repo, l.digest, err)
	}
	if !gone {
		w.log.Info("deleted layer link", "repository", l.repo, "digest", l.digest.String())
	}
	return nil
}

func (w *sweeper) deleteBlob(ctx context.Context, b blobInfo) error {
	gone, err := w.s.deleteDir(ctx, blobDir(b.digest))
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", b.digest, err)
	}
	if gone {
		return nil
	}
	w.mu.Lock()
	w.res.PurgedBlobs++
	w.res.FreedSpace += b.size
	w.mu.Unlock()
	w.log.Info("deleted blob", "digest", b.digest.String(), "size", b.size)
	return nil
}
