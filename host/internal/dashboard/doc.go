// Package dashboard owns the web dashboard operators use to watch and
// drive Berth: the static files of a single page (HTML, CSS and plain
// JavaScript, embedded in the binary, with no build step and nothing from
// another origin) and the handler that serves them under /dashboard/ with
// a strict Content-Security-Policy and the other security headers.
//
// The files hold no data and need no secret. Everything the page shows
// comes from the REST API, every call with "Authorization: Harbor-Secret
// <secret>": the operator types the secret once, the page keeps it in the
// tab's sessionStorage (never a cookie, never a URL), and it reads the
// worker pools (GET /api/v1/stats), the jobs (GET /api/v1/jobs, paged and
// filtered), a job's stats, log and executions, sends stop, cancel and
// retry, and follows GET /api/v1/events, the host's live stream of job
// events and job counts (package api, stream.go), read with fetch so that
// the secret travels in a header. It polls too, for what the stream cannot
// see: changes made by other hosts.
//
// The package does not mount itself: package api serves its handler on
// the API's listener (api.Options.Dashboard).
package dashboard
