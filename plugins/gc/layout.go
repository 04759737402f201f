package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// The storage layout of a CNCF distribution registry (v2 and v3 alike), as
// its storage driver sees it: paths below the driver's root.
const (
	v2Root    = "/docker/registry/v2"
	blobsRoot = v2Root + "/blobs"
	reposRoot = v2Root + "/repositories"
)

// blobDir is the directory of a blob: blobs/<algorithm>/<2 hex>/<hex>.
func blobDir(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(blobsRoot, d.Algorithm().String(), hex[:2], hex)
}

// blobData is the file holding a blob's bytes.
func blobData(d digest.Digest) string { return path.Join(blobDir(d), "data") }

func manifestsDir(repo string) string { return path.Join(reposRoot, repo, "_manifests") }

// revisionDir is the directory of a manifest revision link of repo.
func revisionDir(repo string, d digest.Digest) string {
	return path.Join(manifestsDir(repo), "revisions", d.Algorithm().String(), d.Encoded())
}

func tagsDir(repo string) string { return path.Join(manifestsDir(repo), "tags") }

func tagCurrentLink(repo, tag string) string { return path.Join(tagsDir(repo), tag, "current", "link") }

// tagIndexEntry is the directory that records that tag once pointed at d.
func tagIndexEntry(repo, tag string, d digest.Digest) string {
	return path.Join(tagsDir(repo), tag, "index", d.Algorithm().String(), d.Encoded())
}

func layersDir(repo string) string { return path.Join(reposRoot, repo, "_layers") }

// layerLinkDir is the directory of a layer link of repo.
func layerLinkDir(repo string, d digest.Digest) string {
	return path.Join(layersDir(repo), d.Algorithm().String(), d.Encoded())
}

// notFound reports whether err says a path does not exist.
func notFound(err error) bool {
	var nf driver.PathNotFoundError
	return errors.As(err, &nf)
}

// link is a link file of a repository: the digest it names and when it
// was written.
type link struct {
	digest  digest.Digest
	modTime time.Time
}

// blobInfo is a blob of the blob store.
type blobInfo struct {
	digest  digest.Digest
	size    int64
	modTime time.Time
}

// repository is what a repository holds, as read from the storage.
type repository struct {
	name string
	// revisions are the manifest revision links whose blob exists.
	revisions map[digest.Digest]link
	// tags maps each tag to the digest its current link names ("" when
	// the tag has no readable current link).
	tags map[string]digest.Digest
	// layers are the layer links whose blob exists.
	layers map[digest.Digest]link
}

// store reads and deletes through a storage driver.
type store struct {
	d driver.StorageDriver
}

// looksLikeRegistry checks that the driver's root holds a registry's
// storage.
func (s store) looksLikeRegistry(ctx context.Context) error {
	fi, err := s.d.Stat(ctx, v2Root)
	if err != nil {
		if notFound(err) {
			return fmt.Errorf("it has no docker/registry/v2: not a registry's storage")
		}
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("its docker/registry/v2 is not a directory")
	}
	return nil
}

// repositories lists the repositories: every directory below
// repositories/ that holds a _manifests directory, as distribution's
// catalog finds them (a directory whose name starts with "_" is never a
// repository's path).
func (s store) repositories(ctx context.Context) ([]string, error) {
	var repos []string
	err := s.d.Walk(ctx, reposRoot, func(fi driver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fi.IsDir() {
			return nil
		}
		rel := strings.TrimPrefix(fi.Path(), reposRoot+"/")
		name := path.Base(rel)
		switch {
		case name == "_manifests":
			repos = append(repos, path.Dir(rel))
			return driver.ErrSkipDir
		case strings.HasPrefix(name, "_"):
			return driver.ErrSkipDir
		}
		return nil
	})
	if notFound(err) {
		return nil, nil
	}
	return repos, err
}

// readLink reads a link file: the digest it names.
func (s store) readLink(ctx context.Context, p string) (digest.Digest, error) {
	raw, err := s.d.GetContent(ctx, p)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(strings.TrimSpace(string(raw)))
	if err != nil {
		return "", fmt.Errorf("link %s: %w", p, err)
	}
	return d, nil
}

// blobExists reports whether the blob store has d's data.
func (s store) blobExists(ctx context.Context, d digest.Digest) (bool, error) {
	fi, err := s.d.Stat(ctx, blobData(d))
	switch {
	case notFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return !fi.IsDir(), nil
}

// links reads the link files below dir whose blob exists (a link to a
// missing blob is not served by the registry, and the reference collector
// leaves it too).
func (s store) links(ctx context.Context, dir string) (map[digest.Digest]link, error) {
	out := map[digest.Digest]link{}
	err := s.d.Walk(ctx, dir, func(fi driver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() || path.Base(fi.Path()) != "link" {
			return nil
		}
		d, err := s.readLink(ctx, fi.Path())
		if err != nil {
			return err
		}
		ok, err := s.blobExists(ctx, d)
		if err != nil || !ok {
			return err
		}
		out[d] = link{digest: d, modTime: fi.ModTime()}
		return nil
	})
	if notFound(err) {
		return out, nil
	}
	return out, err
}

// repository reads one repository's revisions, tags and layer links.
func (s store) repository(ctx context.Context, name string) (*repository, error) {
	r := &repository{name: name, tags: map[string]digest.Digest{}}
	var err error
	if r.revisions, err = s.links(ctx, path.Join(manifestsDir(name), "revisions")); err != nil {
		return nil, fmt.Errorf("read the manifest revisions of %s: %w", name, err)
	}
	if r.layers, err = s.links(ctx, layersDir(name)); err != nil {
		return nil, fmt.Errorf("read the layer links of %s: %w", name, err)
	}
	entries, err := s.d.List(ctx, tagsDir(name))
	if err != nil && !notFound(err) {
		return nil, fmt.Errorf("list the tags of %s: %w", name, err)
	}
	for _, e := range entries {
		tag := path.Base(e)
		d, err := s.readLink(ctx, tagCurrentLink(name, tag))
		switch {
		case notFound(err):
			r.tags[tag] = ""
		case err != nil:
			return nil, fmt.Errorf("read tag %s:%s: %w", name, tag, err)
		default:
			r.tags[tag] = d
		}
	}
	return r, nil
}

// blobs lists the blob store: every data file, with its size and time.
func (s store) blobs(ctx context.Context) (map[digest.Digest]blobInfo, error) {
	out := map[digest.Digest]blobInfo{}
	err := s.d.Walk(ctx, blobsRoot, func(fi driver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() || path.Base(fi.Path()) != "data" {
			return nil
		}
		// blobs/<algorithm>/<2 hex>/<hex>/data
		dir := path.Dir(fi.Path())
		alg := path.Base(path.Dir(path.Dir(dir)))
		d, err := digest.Parse(alg + ":" + path.Base(dir))
		if err != nil {
			return nil // not a blob of the layout: left alone
		}
		out[d] = blobInfo{digest: d, size: fi.Size(), modTime: fi.ModTime()}
		return nil
	})
	if notFound(err) {
		return out, nil
	}
	return out, err
}

// maxManifestSize bounds what is read as a manifest (distribution refuses
// manifests over 4 MiB).
const maxManifestSize = 4 << 20

// manifestRefs reads manifest d from the blob store and returns the
// digests it references: config, layers (and the blobSums of a schema 1
// manifest), and the children of an index or manifest list.
func (s store) manifestRefs(ctx context.Context, d digest.Digest) (blobs, children []digest.Digest, err error) {
	fi, err := s.d.Stat(ctx, blobData(d))
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	if fi.Size() > maxManifestSize {
		return nil, nil, fmt.Errorf("manifest %s: %d bytes, more than a manifest may hold", d, fi.Size())
	}
	raw, err := s.d.GetContent(ctx, blobData(d))
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	return parseManifest(d, raw)
}

// deleteDir deletes p and everything below it; gone reports that it was
// not there.
func (s store) deleteDir(ctx context.Context, p string) (gone bool, err error) {
	err = s.d.Delete(ctx, p)
	if notFound(err) {
		return true, nil
	}
	return false, err
}
