// Package job holds the job model that the host's packages share and the
// REST API speaks: statuses and the one rule for moving between them,
// kinds, the stats of a job, submission and action requests, the status
// hook event, job IDs, and the errors every layer maps onto (in one place,
// the api package) HTTP statuses.
//
// The JSON shapes here are the wire contract of Harbor 2.x's job service.
//
// It holds types and pure rules only: no I/O, no Redis, no HTTP.
package job
