package gcref_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/berth-dev/berth/host/internal/testkit/gcref"
	"github.com/berth-dev/berth/host/internal/testkit/registrytest"
)

// The reference with --delete-untagged finds the overwritten image and
// the deleted one eligible, keeps the index's children and the shared
// layers, and leaves the storage it was asked about untouched.
func TestEligibleDeleteUntagged(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	before := gcref.Snapshot(t, reg.StorageRoot())

	got := gcref.Eligible(t, reg.StorageRoot(), true)
	if after := gcref.Snapshot(t, reg.StorageRoot()); !maps.Equal(before, after) {
		t.Fatal("Eligible changed the storage it was asked about")
	}
	// The old image: its manifest (a revision of a, and a blob), its
	// config and layers; b:x's blobs (its revision went with the API's
	// delete).
	want := append(append([]string{s.Old, s.Deleted}, s.OldBlobs...), s.DeletedBlobs...)
	slices.Sort(want)
	if !slices.Equal(got.Blobs, want) {
		t.Fatalf("eligible blobs = %v, want %v", got.Blobs, want)
	}
	if w := []string{"a@" + s.Old}; !slices.Equal(got.Manifests, w) {
		t.Fatalf("eligible manifests = %v, want %v", got.Manifests, w)
	}
	for _, keep := range append(append(append([]string{s.Index, s.Current, s.V2}, s.Children...), s.ChildBlobs...), s.SharedLayers...) {
		if slices.Contains(got.Blobs, keep) {
			t.Fatalf("the reference deems %s eligible, which a tag reaches", keep)
		}
	}
	if len(got.LayerLinks) == 0 {
		t.Fatal("no layer link eligible: the old image's links should be")
	}
}

// Without --delete-untagged the reference keeps every manifest revision
// (the old image with its blobs) and takes only b:x's blobs.
func TestEligibleKeepUntagged(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	got := gcref.Eligible(t, reg.StorageRoot(), false)
	want := append([]string{s.Deleted}, s.DeletedBlobs...)
	slices.Sort(want)
	if !slices.Equal(got.Blobs, want) || len(got.Manifests) != 0 {
		t.Fatalf("eligible = %+v, want blobs %v and no manifest", got, want)
	}
}

// Collect deletes what Eligible said, and then nothing is left to take;
// every tag still validates.
func TestCollectThenNothingEligible(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	want := gcref.Eligible(t, reg.StorageRoot(), true)
	got := gcref.Collect(t, reg.StorageRoot(), true)
	if !slices.Equal(got.Blobs, want.Blobs) || !slices.Equal(got.Manifests, want.Manifests) || !slices.Equal(got.LayerLinks, want.LayerLinks) {
		t.Fatalf("Collect deleted %+v, Eligible said %+v", got, want)
	}
	if again := gcref.Eligible(t, reg.StorageRoot(), true); !again.Empty() {
		t.Fatalf("after Collect the reference still finds %+v", again)
	}
	for _, tag := range s.Tags {
		reg.Validate(t, tag)
	}
}

// Why the reference is distribution v3's: Debian's 2.8 collector with
// --delete-untagged deletes the children of a tagged index, so that the
// index no longer validates. If this test fails, Debian's collector has
// been fixed and the package documentation should say so.
func TestDebianCollectorDeletesIndexChildren(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t)
	s := gcref.Seed(t, reg)
	ref := gcref.Eligible(t, reg.StorageRoot(), true)
	for _, c := range s.Children {
		if slices.Contains(ref.Blobs, c) {
			t.Fatalf("the reference deems the index child %s eligible", c)
		}
	}
	reg.GarbageCollect(t, true)
	gone := 0
	for _, c := range s.Children {
		if !reg.Exists(t, "a@"+c) {
			gone++
		}
	}
	if gone == 0 {
		t.Fatalf("Debian's collector kept every child of a:multi; its log:\n%s", reg.Log())
	}
}
