// Package runner runs one attempt of a job on this host and reports how it
// ended. The lifecycle owner (package jobs) starts the attempt in the
// store and hands it over; the runner calls the plugin's Run, relays the
// job's check-ins (to the lifecycle owner), log lines (to the job's log)
// and sub-job launches, turns a stop or cancel into a signal to the plugin
// and then a cancelled call, and returns an Outcome. It never writes a
// status and never decides on a retry.
//
// A stop reaches the plugin through the run itself (the plugin host sends
// it right after the start on the run's stream), so that a stop that
// comes at any moment of the start, even before the plugin has the job,
// ends the job at once; one that comes before the call is made ends the
// attempt without calling the plugin. Revoke gives a run up when the host
// lost the job's lease (outcome LeaseLost).
package runner
