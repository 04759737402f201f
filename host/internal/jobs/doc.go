// Package jobs owns the life of a job on a host, from submission to its
// final status. It is the only caller of the store's changes: it submits
// jobs and periodic executions, starts each attempt a worker takes, hands
// it to the runner, records how it ended, decides on a retry and its wait
// (the one place that does), stops, cancels and retries jobs on request,
// queues again the jobs of a host that shuts down, and fails the running
// jobs that show no progress (for the reaper). Every change the store
// makes comes back as job.Event values, which it publishes, once, on the
// events bus.
//
// A run holds a lease in Redis from its start until its outcome is
// recorded (leases.go): this host renews the leases of its attempts in
// one round trip a third of a lease apart, gives a run up at once when it
// finds its lease lost or could not renew it for most of the lease, and,
// for the reaper, queues again the running jobs whose lease expired. An
// outcome that Redis does not take (an outage, a restart) waits on its
// worker and is tried again with backoff until Redis answers, keeping the
// lease meanwhile; only a shutdown gives it up, and the lease then brings
// the job back.
//
// It also answers what the REST API reads (stats, logs, listings,
// executions, worker pools, configuration): it implements api.Backend.
//
// It does not run plugins (package runner does), does not deliver hooks
// (package hook), and does not spell Redis keys (package store).
package jobs
