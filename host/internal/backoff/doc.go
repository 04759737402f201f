// Package backoff is the one rule for waiting between the tries of
// something that keeps failing: a base wait that doubles with each failure
// up to a cap, plus jitter so that many failures do not retry in step. Job
// retries, hook deliveries, the hook breaker, plugin restarts and the
// pub/sub reconnect all use it.
//
// It computes waits; it never sleeps and keeps no state.
package backoff
