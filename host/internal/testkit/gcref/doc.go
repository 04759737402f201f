// Package gcref is the reference garbage collector of Berth's GC tests:
// distribution v3's own storage.MarkAndSweep (registry/storage, over the
// registry/storage/driver/filesystem driver), called in the test process,
// on a registry's storage root.
//
// Eligible answers what the reference would delete, without touching the
// storage: it copies the storage root into a temp dir of the test, runs a
// real (not dry) MarkAndSweep on the copy, and compares the copy before
// and after: the blob data, manifest revision links and layer links that
// are gone are what the reference deems eligible. It reads the result off
// the storage rather than MarkAndSweep's dry-run output because that
// output goes to the process's stdout through fmt.Printf (capturing it
// means swapping os.Stdout under parallel tests) in a format of its
// version, while what a real run removes is the fact a comparison needs.
// Collect runs the reference in place, and State lists what a storage
// holds, read from the files, independently of the code under test.
//
// The reference is distribution v3's and not Debian's docker-registry 2.8
// garbage-collect (registrytest.GarbageCollect): with --delete-untagged
// the 2.8 collector deletes the children of a tagged image index, which
// this package's tests show.
//
// Tests only: nothing outside tests may import it.
package gcref
