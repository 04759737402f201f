// Package service is what the REST API does: it implements api.Backend on
// top of the store, the plugins (which validate parameters), the runner
// (which stops jobs running on this host without waiting for pub/sub),
// the job logs and the worker pools' heartbeats.
package service
