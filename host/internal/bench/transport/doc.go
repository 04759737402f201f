// Package transport measures, for the bench's part 10, what a job's run
// costs on the wire three ways: a unary call per job (plugin protocol v1),
// a bidirectional stream per job, and one stream per plugin process that
// carries every job (protocol v2's Session). Both ends run in the calling
// process over gRPC with mutual TLS on a unix socket, as go-plugin sets it
// up, so the CPU it uses is both sides' cost.
//
// It is a measuring tool of the bench; nothing in the product imports it.
package transport
