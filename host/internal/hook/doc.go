// Package hook delivers status hook events: for every status change and
// check-in of a job submitted with a status_hook, POST <hook> with
// {"job_id","status","check_in","metadata":{stats}}; only HTTP 200 counts.
//
// The events wait in Redis (package store writes each one in the same
// script as the change it reports), so none is lost when a receiver is
// down or a host restarts. The deliverer observes the host's events bus
// (Observe): a change that queued a hook event wakes a worker at once;
// changes made on other hosts wake it through Redis pub/sub (OnEvent). A fixed number of workers per host claim one job
// at a time with a lease, so a job's events go out one by one, in order,
// and any host can deliver any job's events. A failed delivery is retried
// with exponential backoff and jitter; an endpoint that keeps failing is
// skipped for a while by a breaker, so that a dead receiver costs the
// others nothing but a Redis round trip per event. Memory and goroutines
// stay bounded however many endpoints are down: the workers are fixed and
// the breaker remembers a bounded number of endpoints.
//
// It never queues events (the store does, with the change they report)
// and never changes a job's status.
package hook
