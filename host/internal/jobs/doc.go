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
// It also answers what the REST API reads (stats, logs, listings,
// executions, worker pools, configuration): it implements api.Backend.
//
// It does not run plugins (package runner does), does not deliver hooks
// (package hook), and does not spell Redis keys (package store).
package jobs
