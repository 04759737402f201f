// Package pluginhost owns the job plugins of a Berth host: it finds every
// executable in the plugins directory, starts each one through
// hashicorp/go-plugin (gRPC only, AutoMTLS, versioned handshake), learns the
// job types it serves (Describe), and restarts it with backoff when it dies.
// It is the gRPC client of the plugins' Job service and serves the Host
// callback service that running jobs call (check-in, log, sub-jobs) over
// go-plugin's broker, one connection per plugin process.
//
// It guards the host against its plugins: plugin stderr is read and logged
// here and never reaches go-plugin's log parser (which a line such as
// {"@message":1} makes panic), every plugin gets a parent-death signal so it
// does not outlive a killed host, gRPC message limits are raised on both
// sides, and killing a plugin is bounded in time.
//
// It knows nothing of Redis, statuses or retries: it runs calls into
// plugins and reports what they answered.
package pluginhost
