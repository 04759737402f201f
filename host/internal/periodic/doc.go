// Package periodic runs periodic jobs. A periodic job is a policy with a
// 6-field cron spec (seconds first); every host looks ahead a short horizon
// and, for each fire time t, has the lifecycle owner create the execution
// "<policy>@<t>" (kind Scheduled, upstream_job_id = the policy) in the
// scheduled set. The store creates each fire time's execution exactly once
// however many hosts try, and the due-job mover starts it at t.
//
// The executions of a policy submitted unique never run at once: each
// takes the policy's unique claim (its name and parameters) as it starts,
// and one whose predecessor has not ended is skipped, Stopped with a
// check-in that says so (the store decides it, atomically with the start).
//
// Cron specs are parsed by robfig/cron/v3, in UTC. It never changes a job
// itself: executions are created through Executions.
package periodic
