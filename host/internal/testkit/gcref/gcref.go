package gcref

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/sirupsen/logrus"
)

// Result is what a collection deletes (or, from Eligible, would delete),
// each list sorted.
type Result struct {
	// Blobs are the digests ("sha256:…") whose blob data is deleted.
	Blobs []string
	// Manifests are the manifest revisions deleted, as "repo@sha256:…".
	Manifests []string
	// LayerLinks are the layer links deleted, as "repo@sha256:…".
	LayerLinks []string
}

// Empty reports whether the result deletes nothing.
func (r Result) Empty() bool {
	return len(r.Blobs) == 0 && len(r.Manifests) == 0 && len(r.LayerLinks) == 0
}

// State is what a registry's storage holds, read from its files: each
// list sorted, in the forms of Result.
type State struct {
	Blobs      []string
	Manifests  []string // manifest revision links
	LayerLinks []string
	// BlobBytes is the size of all blob data.
	BlobBytes int64
}

// Eligible returns what distribution v3's MarkAndSweep would delete from
// the storage at root (the registry's filesystem rootdirectory), with
// RemoveUntagged set to deleteUntagged, leaving root untouched: it runs
// on a copy (see the package documentation).
func Eligible(t testing.TB, root string, deleteUntagged bool) Result {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "storage")
	if err := copyTree(root, cp); err != nil {
		t.Fatalf("gcref: copy the storage: %v", err)
	}
	return Collect(t, cp, deleteUntagged)
}

// Collect runs distribution v3's MarkAndSweep on the storage at root, for
// real, and returns what it deleted. Nothing may write to the storage
// meanwhile.
func Collect(t testing.TB, root string, deleteUntagged bool) Result {
	t.Helper()
	before := ReadState(t, root)
	// MarkAndSweep's vacuum logs every deletion at info level to logrus's
	// standard logger, and distribution offers no way to hand it another:
	// keep the test output to its warnings.
	logrus.StandardLogger().SetLevel(logrus.WarnLevel)
	ctx := context.Background()
	d := filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100})
	reg, err := storage.NewRegistry(ctx, d)
	if err != nil {
		t.Fatalf("gcref: open the storage as a registry: %v", err)
	}
	if err := storage.MarkAndSweep(ctx, d, reg, storage.GCOpts{RemoveUntagged: deleteUntagged, Quiet: true}); err != nil {
		t.Fatalf("gcref: MarkAndSweep(RemoveUntagged %v) on %s: %v", deleteUntagged, root, err)
	}
	after := ReadState(t, root)
	return Result{
		Blobs:      minus(before.Blobs, after.Blobs),
		Manifests:  minus(before.Manifests, after.Manifests),
		LayerLinks: minus(before.LayerLinks, after.LayerLinks),
	}
}

// ReadState lists the blobs, manifest revision links and layer links of
// the storage at root, from the files of the layout below
// docker/registry/v2.
func ReadState(t testing.TB, root string) State {
	t.Helper()
	var s State
	v2 := filepath.Join(root, "docker", "registry", "v2")
	blobs := filepath.Join(v2, "blobs")
	err := filepath.WalkDir(blobs, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// blobs/<algorithm>/<2 hex>/<hex>/data
		if e.Type().IsRegular() && e.Name() == "data" {
			dir := filepath.Dir(p)
			alg := filepath.Base(filepath.Dir(filepath.Dir(dir)))
			s.Blobs = append(s.Blobs, alg+":"+filepath.Base(dir))
			fi, err := e.Info()
			if err != nil {
				return err
			}
			s.BlobBytes += fi.Size()
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("gcref: read the blobs: %v", err)
	}
	repos := filepath.Join(v2, "repositories")
	err = filepath.WalkDir(repos, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() || e.Name() != "link" {
			return nil
		}
		rel, err := filepath.Rel(repos, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		// <repo...>/_manifests/revisions/<alg>/<hex>/link
		// <repo...>/_layers/<alg>/<hex>/link
		n := len(parts)
		switch {
		case n >= 6 && parts[n-4] == "revisions" && parts[n-5] == "_manifests":
			s.Manifests = append(s.Manifests, strings.Join(parts[:n-5], "/")+"@"+parts[n-3]+":"+parts[n-2])
		case n >= 5 && parts[n-4] == "_layers":
			s.LayerLinks = append(s.LayerLinks, strings.Join(parts[:n-4], "/")+"@"+parts[n-3]+":"+parts[n-2])
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("gcref: read the repositories: %v", err)
	}
	sort.Strings(s.Blobs)
	sort.Strings(s.Manifests)
	sort.Strings(s.LayerLinks)
	return s
}

// Snapshot returns every file and directory below root with a hash of
// its content (directories and links by kind), to compare a storage byte
// for byte before and after.
func Snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			out[rel] = "dir"
		case e.Type().IsRegular():
			sum, err := hashFile(p)
			if err != nil {
				return err
			}
			out[rel] = sum
		default:
			out[rel] = e.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("gcref: snapshot %s: %v", root, err)
	}
	return out
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// minus returns the elements of a (sorted) not in b.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// copyTree copies the regular files and directories below src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case e.Type().IsRegular():
			return copyFile(p, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BlobSize returns the size of blob d's data in the storage at root.
func BlobSize(t testing.TB, root, d string) int64 {
	t.Helper()
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 2 {
		t.Fatalf("gcref: %q is not a digest", d)
	}
	fi, err := os.Stat(filepath.Join(root, "docker", "registry", "v2", "blobs", alg, hex[:2], hex, "data"))
	if err != nil {
		t.Fatalf("gcref: blob %s: %v", d, err)
	}
	return fi.Size()
}
