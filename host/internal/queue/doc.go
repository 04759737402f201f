// Package queue is Berth's only user of gocraft/work: it runs the worker
// pools that take jobs from Redis and hand them to a Handler, reads the
// worker pools' heartbeats, and wakes idle workers when a job arrives.
//
// A host's workers are one gocraft/work pool while it is idle, and a pool
// per "generation" while long jobs run: a wake-up restarts the idle pool,
// or starts a new one with the workers no job holds (see Pool). Every
// pool is a plain gocraft/work pool, so Harbor's dashboard reads the same
// keys with the same meaning.
//
// gocraft/work decides nothing about retries here. A handler returns nil
// once a job is handled, whatever its outcome: the lifecycle owner (package
// jobs) decides on a retry and puts the job in gocraft/work's retry set
// itself, in the same step that records the failure. A job type is
// registered with an unbounded MaxFails and SkipDead, so that the one case
// where a handler returns an error (the job could not be handled at all)
// only queues the entry again.
package queue
