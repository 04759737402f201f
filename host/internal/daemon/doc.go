// Package daemon assembles a Berth host from its configuration: the Redis
// backend, the store, the job logs, the plugins, the runner, the worker
// pool, the pub/sub listener and the REST API, and takes them down again
// in order on shutdown (stop taking API calls and jobs, give running jobs
// the grace period, then end them, which queues them again for another
// host, and only then stop the plugins).
//
// It wires the host's packages together and owns their start and stop
// order; it holds no job logic of its own.
package daemon
