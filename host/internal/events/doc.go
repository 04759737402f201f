// Package events is the funnel of a host: every change the store makes to
// a job (job.Event) is published here, once, by the lifecycle owner
// (package jobs), and handed to the host's in-process observers: hook
// delivery, metrics, the live stream of the dashboard and the CLI.
//
// Observers are called synchronously, in the order they registered, on
// the goroutine that made the change: they must not block (count, kick a
// worker, hand off to a channel). Subscriptions are buffered channels for
// consumers that may be slow; a full subscription drops events and counts
// them rather than slowing down jobs.
//
// It does not store events and does not cross hosts: the durable record
// of a change is in Redis (the stats, and the status hook events the same
// script queues).
package events
