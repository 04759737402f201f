// Package core is the Go sdk's machinery: the plugin side of protocol v2
// (Describe, Configure, Validate and the session that carries every run),
// the context each run gets, the batching of its log lines, and serving
// over go-plugin, in production, in debug (reattach) mode and in-process
// for sdktest. Package sdk is its public face; sdktest drives the same
// server in tests, so a plugin's unit test sees exactly what production
// sees.
//
// It must not be imported outside the sdk, and it knows nothing of the
// host beyond the protocol.
package core
