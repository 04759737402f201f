// Package spawn starts child processes that the kernel kills when this
// process dies, even by SIGKILL, and at no other time.
//
// Linux delivers a parent-death signal when the thread that forked the
// child ends, not the process, and the Go runtime ends a thread when a
// goroutine locked to it returns. A child forked from an ordinary
// goroutine therefore dies whenever some unrelated locked goroutine later
// runs on that thread and returns (a plugin host's spawner does, when its
// host stops). Start forks from a goroutine locked to its thread until the
// child has been reaped.
package spawn
