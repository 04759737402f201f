// Package hosttest starts real Berth hosts for end-to-end tests: a real
// redis-server (redistest), real plugin binaries (plugintest), and the
// REST API on a real loopback listener, with an HTTP client that speaks
// Harbor's job service API.
//
// Tests only: nothing outside tests may import it.
package hosttest
