// Package due moves jobs whose time has come (Scheduled jobs, periodic
// executions, failed jobs waiting for a retry) from gocraft/work's
// scheduled and retry sets into their queues at the due second and rings
// the doorbell, so they start within milliseconds of their run time.
// gocraft/work's own requeuers do the same only once a second, after which
// idle workers may sleep up to five more. Every host runs one; the move is
// one atomic script, so each entry moves once. It changes no job's status.
package due
