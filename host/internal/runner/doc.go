// Package runner runs the attempts of jobs on this host: for each job a
// worker takes it moves the job to Running, calls the plugin's Run, relays
// the job's check-ins and log lines, turns stop and cancel requests into a
// signal to the plugin and a cancelled call, and ends the attempt Success,
// Stopped or Error, deciding whether a failed attempt is retried. An
// attempt interrupted by the host's shutdown is queued again (a new
// revision), not failed.
package runner
