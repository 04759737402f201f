// Package sdk is everything a job author needs to write a Berth plugin.
//
// A plugin is a program that serves one or more job types. A job type is a
// value with a Run method that takes its parameters decoded into a struct
// of the author's, with JSON tags:
//
//	type Params struct {
//		Image string `json:"image"`
//		Tries int    `json:"tries,omitempty" jsonschema:"minimum=1,maximum=9"`
//	}
//
//	type Job struct{ sdk.Defaults }
//
//	func (Job) Run(ctx sdk.Context, p Params) error { ... }
//
//	func main() {
//		if err := sdk.Serve(sdk.Jobs{"MY_JOB": sdk.Typed[Params](Job{})}); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// Build the program and drop the binary into the host's plugins directory;
// the host starts it, asks which job types it serves and drives it over
// gRPC (hashicorp/go-plugin, protocol v2). Nothing else is needed.
//
// The parameters' JSON Schema is generated from the struct (a field is
// required unless it is omitempty, unknown parameters are refused, and
// jsonschema tags add bounds, enums and patterns); the host checks every
// submission against it and answers a bad one with a 400 that names the
// parameter. A job that checks more implements Validator; one without a
// Validate costs a submission no call into the plugin.
//
// Defaults, embedded, gives MaxFails and ShouldRetry their host defaults
// (four runs, retried); a job declares others by defining them, and may
// implement Concurrency, Versioned and Snoozer. Assert the optional
// interfaces at compile time, so a misspelled method is an error, not a
// silent default:
//
//	var _ sdk.Validator[Params] = Job{}
//
// Run receives a Context: a context.Context that is done when the job is
// stopped or cancelled through the API, when it passes its deadline, or
// when the host shuts down, and that also carries the job's ID, its
// attempt, its properties, Checkin (progress messages, visible in the
// job's stats and sent to its status hook), a logger whose lines go to the
// job's log, OPCommand (was it a stop or a cancel?), SetOutput (what a
// successful run produced) and LaunchJob (start a sub-job tracked as an
// execution of this one).
//
// Run's error decides what happens next: nil is success; Permanent(err)
// fails the job for good, never retried; Snooze(d, why) runs it again
// after d without counting a failure; any other error is a failure,
// retried by the job type's rules.
//
// One plugin process serves many jobs at once: Validate and Run are called
// concurrently, so keep per-run state in Run's local variables.
//
// A plugin may take a section of the host's configuration of its own
// (WithConfig): secrets reach only that plugin. Run with BERTH_PLUGIN_DEBUG=1
// (for instance under a debugger), a plugin serves without a host and
// prints the line that makes a host attach to it.
//
// Package sdktest runs a job in a unit test through this same server and
// context, without a host.
package sdk
