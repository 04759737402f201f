// Package runner runs one attempt of a job on this host and reports how it
// ended. The lifecycle owner (package jobs) starts the attempt in the
// store and hands it over; the runner calls the plugin's Run, relays the
// job's check-ins (to the lifecycle owner), log lines (to the job's log)
// and sub-job launches, turns a stop or cancel into a signal to the plugin
// and then a cancelled call, and returns an Outcome. It never writes a
// status and never decides on a retry.
package runner
