// Package cli is berthctl, the operator's command line of a Berth (or a
// Harbor job service): its commands, flags, output formats and exit codes.
//
// It owns the command tree (spf13/cobra), the reading of the secret (the
// environment or a file, never a flag), the parsing of submissions, the
// table and JSON output, the polling behind watch, log -f and
// submit --wait, and the mapping of every failure to one stderr line and
// an exit code. It talks to the REST API through host/client only; with
// -o json it prints the API's answers as they came, through
// client.WithAnswerHook.
//
// Main is the whole program; host/cmd/berthctl only gives it the process's
// arguments, environment, streams and a signal context.
package cli
