package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const (
	// LayerSize is the size in bytes of each random layer (before gzip).
	LayerSize = 1024
	// opTimeout bounds each helper's conversation with the registry.
	opTimeout = time.Minute
)

// RandomImage returns an image of random layers (LayerSize bytes each) and a
// random config. It is not pushed anywhere.
func RandomImage(t testing.TB, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(LayerSize, int64(layers))
	if err != nil {
		t.Fatalf("registrytest: random image: %v", err)
	}
	return img
}

// RandomIndex returns an OCI image index of images random images, each of
// layers random layers.
func RandomIndex(t testing.TB, images, layers int) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(LayerSize, int64(layers), int64(images))
	if err != nil {
		t.Fatalf("registrytest: random index: %v", err)
	}
	return idx
}

// Extend returns base with layers more random layers on top: a new image
// (new config and manifest digests) that shares every layer of base.
func Extend(t testing.TB, base v1.Image, layers int) v1.Image {
	t.Helper()
	add := make([]v1.Layer, 0, layers)
	for range layers {
		l, err := random.Layer(LayerSize, types.DockerLayer)
		if err != nil {
			t.Fatalf("registrytest: random layer: %v", err)
		}
		add = append(add, l)
	}
	img, err := mutate.AppendLayers(base, add...)
	if err != nil {
		t.Fatalf("registrytest: extend image: %v", err)
	}
	return img
}

// ImageWithFiles returns a linux/amd64 image with one gzipped tar layer per
// map, each map holding file paths (relative, slash-separated:
// "etc/os-release") and contents. Parent directories are added; the same
// files always make the same layer.
func ImageWithFiles(t testing.TB, layers ...map[string]string) v1.Image {
	t.Helper()
	cf, err := empty.Image.ConfigFile()
	if err != nil {
		t.Fatalf("registrytest: empty config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		t.Fatalf("registrytest: config: %v", err)
	}
	for i, files := range layers {
		raw, err := tarFiles(files)
		if err != nil {
			t.Fatalf("registrytest: layer %d: %v", i, err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(raw)), nil
		})
		if err != nil {
			t.Fatalf("registrytest: layer %d: %v", i, err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatalf("registrytest: layer %d: %v", i, err)
		}
	}
	return img
}

// tarFiles returns a tar archive of files and their parent directories, in
// name order, with fixed times and owners.
func tarFiles(files map[string]string) ([]byte, error) {
	contents := map[string]string{}
	dirs := map[string]bool{}
	for name, body := range files {
		name = strings.TrimPrefix(path.Clean("/"+name), "/")
		contents[name] = body
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	names := make([]string, 0, len(contents)+len(dirs))
	for name := range contents {
		names = append(names, name)
	}
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, name := range names {
		hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		} else {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(contents[name]))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, contents[name]); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// reference parses ref ("repo:tag", "repo@sha256:…", with or without the
// Host prefix) as a reference to the registry itself, bypassing the proxy,
// and returns it with the options of a helper's calls.
func (r *Registry) reference(t testing.TB, ref string) (name.Reference, []remote.Option, context.CancelFunc) {
	t.Helper()
	backend, err := r.backendHost()
	if err != nil {
		t.Fatalf("registrytest: %s: %v", ref, err)
	}
	rel := strings.TrimPrefix(ref, r.Host()+"/")
	parsed, err := name.ParseReference(backend+"/"+rel, name.Insecure)
	if err != nil {
		t.Fatalf("registrytest: reference %q: %v", ref, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	return parsed, []remote.Option{
		remote.WithAuth(r.Auth()),
		remote.WithTransport(r.helperTr),
		remote.WithContext(ctx),
	}, cancel
}

// Push pushes img to ref ("repo:tag") and returns its manifest digest
// ("sha256:…").
func (r *Registry) Push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	parsed, opts, cancel := r.reference(t, ref)
	defer cancel()
	if err := remote.Write(parsed, img, opts...); err != nil {
		t.Fatalf("registrytest: push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("registrytest: digest of %s: %v", ref, err)
	}
	return d.String()
}

// PushRandom pushes a RandomImage of layers layers to ref and returns its
// digest.
func (r *Registry) PushRandom(t testing.TB, ref string, layers int) string {
	t.Helper()
	return r.Push(t, ref, RandomImage(t, layers))
}

// PushIndex pushes idx and every image in it to ref and returns the index's
// digest.
func (r *Registry) PushIndex(t testing.TB, ref string, idx v1.ImageIndex) string {
	t.Helper()
	parsed, opts, cancel := r.reference(t, ref)
	defer cancel()
	if err := remote.WriteIndex(parsed, idx, opts...); err != nil {
		t.Fatalf("registrytest: push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatalf("registrytest: digest of %s: %v", ref, err)
	}
	return d.String()
}

// Digest returns the manifest digest at ref; it fails the test if there is
// none.
func (r *Registry) Digest(t testing.TB, ref string) string {
	t.Helper()
	parsed, opts, cancel := r.reference(t, ref)
	defer cancel()
	desc, err := remote.Head(parsed, opts...)
	if err != nil {
		t.Fatalf("registrytest: digest of %s: %v", ref, err)
	}
	return desc.Digest.String()
}

// Exists reports whether the registry has a manifest at ref (a 404 is
// false; any other error fails the test).
func (r *Registry) Exists(t testing.TB, ref string) bool {
	t.Helper()
	parsed, opts, cancel := r.reference(t, ref)
	defer cancel()
	_, err := remote.Head(parsed, opts...)
	var terr *transport.Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return false
	default:
		t.Fatalf("registrytest: head %s: %v", ref, err)
		return false
	}
}

// Delete deletes the manifest at ref through the registry's API. A tag is
// first resolved to its digest (distribution deletes by digest only), so
// every tag of that manifest goes with it. Blobs stay until a garbage
// collection.
func (r *Registry) Delete(t testing.TB, ref string) {
	t.Helper()
	parsed, opts, cancel := r.reference(t, ref)
	defer cancel()
	if _, ok := parsed.(name.Tag); ok {
		desc, err := remote.Head(parsed, opts...)
		if err != nil {
			t.Fatalf("registrytest: delete %s: resolve the tag: %v", ref, err)
		}
		parsed = parsed.Context().Digest(desc.Digest.String())
	}
	if err := remote.Delete(parsed, opts...); err != nil {
		t.Fatalf("registrytest: delete %s: %v", ref, err)
	}
}

// Validate pulls what is at ref, an image or an index (with every image in
// it), and checks it with go-containerregistry's validate package: every
// blob is there and matches its digest, size and diff ID.
func (r *Registry) Validate(t testing.TB, ref string) {
	t.Helper()
	parsed, opts, cancel := r.reference(t, ref)
	defer cancel()
	desc, err := remote.Get(parsed, opts...)
	if err != nil {
		t.Fatalf("registrytest: validate %s: %v", ref, err)
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err == nil {
			err = validate.Index(idx)
		}
		if err != nil {
			t.Fatalf("registrytest: validate index %s: %v", ref, err)
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			t.Fatalf("registrytest: validate image %s: %v", ref, err)
		}
	default:
		t.Fatalf("registrytest: validate %s: neither an image nor an index (%s)", ref, desc.MediaType)
	}
}
