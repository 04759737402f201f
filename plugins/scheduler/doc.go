// Command scheduler is the SCHEDULER job plugin: Harbor's scheduler job,
// the heartbeat of Harbor's schedules (replication, garbage collection,
// scan all, retention and the like).
//
// Harbor's core submits a SCHEDULER job as a Periodic job with its own
// status hook. At each fire, the execution checks in its parameters as
// JSON, and core's hook handler, getting a check-in for a SCHEDULER job,
// runs the schedule's callback (Harbor 2.0 decoded the check-in for the
// callback's name and parameters; later versions look the schedule up and
// use the check-in's time to run each fire once).
//
// The check-in is the bytes Harbor's job checks in: Go's json.Marshal of
// the parameters (keys sorted, no spaces, <, > and & escaped, numbers as
// they decode into float64), with, for an execution of a periodic policy,
// the parameter Harbor's job service adds to every execution:
// "_job_kind_periodic_" set to the fire time in unix seconds, as a string.
// A policy submitted with no parameters so checks in
// {"_job_kind_periodic_":"1700000000"}.
//
// It takes any parameters and checks none, as Harbor's; it allows 3 failed
// runs, retried. It imports sdk only, never the host.
package main
