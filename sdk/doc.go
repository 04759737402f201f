// Package sdk is everything a job author needs to write a Berth plugin.
//
// A plugin is a program that serves one or more job types. Each job type
// implements Job: MaxFails and ShouldRetry tell the host how to retry a
// failed run, Validate checks the parameters of a submitted job before the
// host accepts it, and Run does the work. main is one call:
//
//	func main() { sdk.Serve(sdk.Jobs{"MY_JOB": myjob.Job{}}) }
//
// Build the program and drop the binary into the host's plugins directory;
// the host starts it, asks which job types it serves and drives it over
// gRPC (hashicorp/go-plugin). Nothing else is needed.
//
// Run receives a Context: a context.Context that is done when the job is
// stopped or cancelled through the API, when it times out, or when the host
// shuts down, and that also carries the job's ID, its properties, Checkin
// (progress messages, visible in the job's stats and sent to its status
// hook), a logger whose lines go to the job's log, OPCommand (was it a stop
// or a cancel?) and LaunchJob (start a sub-job tracked as an execution of
// this one).
//
// One plugin process serves many jobs at once: Validate and Run are called
// concurrently, so keep per-run state in Run's local variables, not in the
// Job value. Parameters arrive decoded from JSON: numbers are float64,
// objects are map[string]any.
//
// Package sdktest runs a job in a unit test without a host.
package sdk
