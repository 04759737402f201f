// Package registrytest starts real OCI registries for tests. It never mocks
// one: every Registry is Debian's docker-registry (CNCF distribution 2.8)
// with filesystem storage in a temp dir of the test, delete enabled, and
// htpasswd Basic auth, listening on a free 127.0.0.1 port behind a small
// counting reverse proxy, also on 127.0.0.1.
//
//	reg := registrytest.Start(t) // stopped in t.Cleanup
//	d := reg.PushRandom(t, "library/a:v1", 3)
//	// hand the code under test reg.URL() (or reg.Ref("library/a:v1")),
//	// reg.Username(), reg.Password(); a GC job reg.StorageRoot() or
//	// reg.ConfigPath()
//	reg.Validate(t, "library/b:v1")
//	if reg.Count("PATCH", "/blobs/uploads/") == 0 { ... }
//
// The proxy. Tests of replication want to say "several blobs were uploaded"
// and "a rerun uploaded nothing", so every request that reaches the registry
// through Host is recorded (method, path, status) before its answer goes
// back: Requests, Count, Writes, Reset. A proxy rather than the registry's
// access log, because the record is complete when the client has its answer
// (a log is written asynchronously, in a format of the registry's version),
// and because Host then stays the same when Restart moves the registry to a
// new port. The proxy keeps the client's Host header, so upload locations
// point back at it. The package's own helpers (Push, Digest, Validate,
// Delete, ...) talk to the registry directly and are not recorded: what
// Requests lists was sent by the code under test.
//
// Seeding. RandomImage, RandomIndex, Extend and ImageWithFiles build images
// with go-containerregistry; Push, PushRandom and PushIndex push them as
// User and return their digests. A GC scenario:
//
//	old := reg.PushRandom(t, "a:v1", 2)     // soon untagged
//	cur := registrytest.RandomImage(t, 2)
//	reg.Push(t, "a:v1", cur)                // a:v1 moves; old is untagged
//	reg.Push(t, "a:v2", registrytest.Extend(t, cur, 1)) // shares cur's layers
//	reg.GarbageCollect(t, true)             // the registry's own collector
//	_ = reg.Exists(t, "a@"+old)             // false now; reg.Blobs(t) lists what is left
//
// and for a scanner:
//
//	reg.Push(t, "debian:12", registrytest.ImageWithFiles(t, map[string]string{
//		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\n",
//		"var/lib/dpkg/status": "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n\n",
//	}))
//
// Every helper takes references relative to the registry ("repo:tag",
// "repo@sha256:…"), or with the Host prefix, fails the test on error, and
// gives up after a minute.
//
// Ports and readiness. distribution cannot report the port it bound, and
// `go test ./...` runs many test binaries at once, so a port chosen by one
// may be taken by another before the registry binds it. Start asks the
// kernel for a free port, starts the registry on it, and polls GET /v2/
// until the answer (401 with auth, 200 without) carries a header with a
// token unique to this Registry; if the bind failed it tries another port.
// Each start is bounded by 15 seconds.
//
// Orphans. On Linux each registry is started, with a parent-death signal
// (SIGKILL), from a goroutine locked to its OS thread until the registry has
// exited, so no registry outlives the test binary, even when the binary
// panics or is killed by `go test -timeout`. The package keeps no global
// state and no goroutine beyond a registry's life: goleak in TestMain needs
// no wrapper for it. On other systems only t.Cleanup stops registries.
//
// Logs. The registry logs warnings, errors and one access-log line per
// request into a buffer (Log); when the test fails, the last 64 KiB are
// shown at cleanup.
//
// If docker-registry is not on PATH, Start fails the test and says how to
// install it (`make deps`, which `make test` runs, or
// `apt-get install -y docker-registry`).
//
// Tests only: nothing outside tests may import it.
package registrytest
