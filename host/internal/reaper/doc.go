// Package reaper runs a background pass on every host; the hosts agree
// through a Redis lock that only one of them works at a time. A pass
// re-queues the jobs held by worker pools whose heartbeat stopped (their
// host died), has the lifecycle owner recover the running jobs whose lease
// expired (their host died, paused, lost Redis, or no longer runs them)
// and fail the jobs that have shown no progress for longer than the
// maximum job duration, re-fires the status hook of jobs whose receiver's
// ack is behind their status with no event waiting, and prunes listing
// index entries whose stats expired. It decides when to look; what a
// stale or unleased job becomes is the lifecycle owner's decision.
package reaper
