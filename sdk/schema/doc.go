// Package schema is the JSON Schema of a job's parameters and of a plugin's
// configuration. The Go sdk generates it from the Go type a job decodes
// its parameters into (For); the host compiles what a plugin declares and
// checks every submission against it before the plugin's own Validate
// (Compile, Check), with messages that name the parameter and say what it
// must be, as a job author would write them. sdktest checks with the same
// code, so a plugin's tests see the host's messages.
//
// Schemas are JSON Schema draft 2020-12: github.com/invopop/jsonschema
// reflects Go types, github.com/santhosh-tekuri/jsonschema validates. Job
// authors do not call this package.
package schema
