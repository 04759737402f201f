// Command probe is the plugin of the chaos suite (package chaos): its one
// job type, PROBE, tells the suite when each run of a job is alive, so that
// the suite can see two runs of one job overlap in time.
//
// A run sends UDP datagrams to the address in its "report" parameter:
//
//	start <job_id> <run> <pid> <unix_ns>   when Run starts
//	beat  <job_id> <run> <pid> <unix_ns>   every beat_ms (default 100)
//	end   <job_id> <run> <pid> <unix_ns>   just before Run returns
//
// where run is a random token of the run. The beats come from their own
// goroutine, never through the host, so a run whose host is frozen still
// shows that it is alive. The run holds for hold_seconds (ending early
// when the host stops it), then succeeds. PROBE allows three failed runs,
// retried.
//
// It is a test fixture: make build does not build it; the suite builds it
// into its own temporary plugins directory.
package main
