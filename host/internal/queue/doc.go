// Package queue is Berth's only user of gocraft/work: it runs the worker
// pool that takes jobs from Redis and hands them to a Handler, reads the
// worker pools' heartbeats, and wakes idle workers when a job arrives.
//
// gocraft/work decides nothing about retries here. A handler returns nil
// once a job is handled, whatever its outcome: the lifecycle owner (package
// jobs) decides on a retry and puts the job in gocraft/work's retry set
// itself, in the same step that records the failure. A job type is
// registered with an unbounded MaxFails and SkipDead, so that the one case
// where a handler returns an error (the job could not be handled at all)
// only queues the entry again.
package queue
