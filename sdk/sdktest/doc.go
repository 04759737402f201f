// Package sdktest runs a Berth job in a unit test, without a host, through
// the real plugin server and job context: the job is served in-process by
// go-plugin (test mode) and driven over a real gRPC connection by a small
// host of this package, which speaks protocol v2 as the Berth host does. A
// plugin's test therefore sees what production sees: parameters checked
// against the job's JSON Schema with the host's messages and decoded from
// JSON, log lines formatted by the real handler, properties, stops and
// cancels reaching the context, and the outcome as the host gets it.
//
// It is for tests of plugins; a plugin's main never imports it.
package sdktest
