// Command berthctl is the operator's command line of a Berth job service:
// it submits, lists, follows, stops and retries jobs and shows the worker
// pools, through the REST API only (host/client). The commands are in
// internal/cli; `berthctl --help` lists them, their flags and the exit
// codes.
//
// The API is --url (env BERTH_URL, default http://127.0.0.1:9444); the
// secret is env CORE_SECRET or the file named by --secret-file, never a
// flag.
package main
