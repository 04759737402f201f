package gcref

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/host/internal/testkit/registrytest"
)

// Scenario is what Seed pushed: the garbage collection scenario of the GC
// tests, with the digests ("sha256:…") that a collection must delete or
// keep.
type Scenario struct {
	// Old is the first image pushed as a:v1, untagged when a:v1 was
	// pushed again; OldBlobs are its config and layers.
	Old      string
	OldBlobs []string
	// Current is a:v1 now; V2 (a:v2) extends it and so shares every layer
	// of it (SharedLayers).
	Current, V2  string
	SharedLayers []string
	// Index is a:multi, an OCI image index; Children are its images,
	// which no tag names directly, and ChildBlobs their configs and
	// layers.
	Index      string
	Children   []string
	ChildBlobs []string
	// Deleted is b:x's image, deleted through the registry's API;
	// DeletedBlobs are its config and layers.
	Deleted      string
	DeletedBlobs []string
	// Tags are the tags left: a:v1, a:v2, a:multi.
	Tags []string
}

// Seed pushes the scenario into reg: a:v1 pushed twice (the first image
// becomes untagged), a:v2 sharing the layers of the second, a:multi an
// index of two images, and b:x pushed then deleted through the API.
func Seed(t testing.TB, reg *registrytest.Registry) Scenario {
	t.Helper()
	var s Scenario
	old := registrytest.RandomImage(t, 2)
	s.Old = reg.Push(t, "a:v1", old)
	s.OldBlobs = blobsOf(t, old)
	cur := registrytest.RandomImage(t, 2)
	s.Current = reg.Push(t, "a:v1", cur)
	v2 := registrytest.Extend(t, cur, 1)
	s.V2 = reg.Push(t, "a:v2", v2)
	s.SharedLayers = layersOf(t, cur)
	idx := registrytest.RandomIndex(t, 2, 1)
	s.Index = reg.PushIndex(t, "a:multi", idx)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("gcref: index manifest: %v", err)
	}
	for _, m := range im.Manifests {
		s.Children = append(s.Children, m.Digest.String())
		child, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatalf("gcref: child %s: %v", m.Digest, err)
		}
		s.ChildBlobs = append(s.ChildBlobs, blobsOf(t, child)...)
	}
	gone := registrytest.RandomImage(t, 2)
	s.Deleted = reg.Push(t, "b:x", gone)
	s.DeletedBlobs = blobsOf(t, gone)
	reg.Delete(t, "b:x")
	s.Tags = []string{"a:v1", "a:v2", "a:multi"}
	return s
}

// blobsOf returns the digests of img's config and layers.
func blobsOf(t testing.TB, img v1.Image) []string {
	t.Helper()
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatalf("gcref: config digest: %v", err)
	}
	return append([]string{cfg.String()}, layersOf(t, img)...)
}

func layersOf(t testing.TB, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("gcref: layers: %v", err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatalf("gcref: layer digest: %v", err)
		}
		out = append(out, d.String())
	}
	return out
}
