// Package redistest starts real redis-server (and redis-sentinel) processes
// for tests. It never mocks Redis: every Server is a redis-server binary
// listening on a free 127.0.0.1 port, with its own temporary directory and no
// persistence (--save "" --appendonly no).
//
// Two ways to get a server:
//
//   - Start gives a test its own server, killed in t.Cleanup. Use it when the
//     test needs to stop, restart or reconfigure Redis, or needs a unix socket,
//     a password or a replica.
//   - Shared gives every test of the package (the test binary) the same
//     server, started on first use. Tests isolate themselves on it with
//     Namespace, which returns a key prefix unique to the call; on the shared
//     server the keys under it are deleted when the test ends.
//
// Ports. redis-server cannot pick its own port (--port 0 disables TCP), and
// `go test ./...` runs many test binaries at once, so a port chosen by one
// process may be taken by another before redis-server binds it. redistest asks
// the kernel for a free port, starts redis-server on it, and then checks that
// the server answering on that port reports the pid of the process it
// started (INFO server, process_id). If the bind failed it picks another port
// and tries again.
//
// Orphans. On Linux every redis-server is started with a parent-death signal
// (SIGKILL) from one goroutine locked to its OS thread for as long as the
// process runs, so no redis-server outlives the test binary, even when the
// binary panics or is killed by `go test -timeout`. On other systems only
// t.Cleanup and Cleanup stop them.
//
// Shared is the package's only global state: a test binary is the unit of
// sharing, and a package-level variable is the one thing that lives exactly
// as long as it. Cleanup stops the shared server and the spawning goroutine;
// call it from TestMain, or wrap m with WithCleanup, notably before
// goleak.VerifyTestMain looks for leaked goroutines:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(redistest.WithCleanup(m))
//	}
//
// If redis-server is not on PATH, Start and Shared fail the test and say how
// to install it (`make test` does it, or `apt-get install -y redis-server`).
package redistest
