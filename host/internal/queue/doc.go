// Package queue is Berth's only user of gocraft/work: it runs the worker
// pool that takes jobs from Redis and hands them to a Handler, reads the
// worker pools' heartbeats, and wakes idle workers when a job arrives.
//
// gocraft/work decides nothing about retries here: a job type is
// registered with an unbounded MaxFails and SkipDead, so a Handler that
// returns an error gets its job retried after Backoff, and one that returns
// nil is done. Berth's runner makes the retry decision.
package queue
