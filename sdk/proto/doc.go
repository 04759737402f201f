// Package proto is the wire protocol between the Berth host and its job
// plugins, version 2: the gRPC service generated from berth.proto and the
// go-plugin handshake both sides must agree on.
//
// Job authors do not use this package; they import sdk and call sdk.Serve.
// It is public so that the host (and plugins written against the protocol
// directly, in Go or any language with gRPC) can build on it;
// docs/plugin-protocol.md describes it for other languages. Regenerate
// the generated files with `make proto`. It holds no logic.
package proto
