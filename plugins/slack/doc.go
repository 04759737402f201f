// Command slack is the SLACK job plugin: Harbor's Slack notification
// job, which posts a message to a Slack incoming webhook.
//
// A SLACK job POSTs payload (Slack's JSON, as Harbor's core makes it from
// an event) to address with Content-Type: application/json, once per run;
// skip_cert_verify skips the check of the receiver's certificate.
//
// Slack's rate limit: a 429 answer snoozes the job for the Retry-After
// Slack gives (seconds or a date; none is taken as 30 s, more than an hour
// as an hour), without counting a failure. Harbor fails the run instead
// and leaves the wait to its retry backoff. As in Harbor, one SLACK job
// runs at a time across all hosts, and it keeps its slot for a second
// (min_interval_ms) after each message Slack answered.
//
// Any other answer is judged as the WEBHOOK job's (plugins/webhook): a 2xx
// is success; Slack's 4xx (invalid_payload, invalid_token,
// channel_not_found, channel_is_archived) fail at once, since a retry
// sends the same message; a 5xx or a network error is retried. Errors give
// the status and the first bytes of the body, which for Slack is its error
// code. The address shows as its scheme, host and first path segment only:
// the rest of a Slack webhook's path is its secret.
//
// MaxFails, the HTTP timeout and the guard against server-side request
// forgery are the WEBHOOK job's: JOBSERVICE_WEBHOOK_JOB_MAX_RETRY (default
// 3), JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT (seconds, default 3), and
// addresses in loopback, private, link-local, unspecified and other
// special-purpose ranges refused unless allowed.
//
// Settings (plugin_config.slack in the host's configuration):
//
//	allowed_networks   list of networks (CIDR) or IPs that may be called
//	max_fails          failed runs allowed (wins over the env variable)
//	timeout_seconds    HTTP timeout (wins over the env variable)
//	body_excerpt_bytes bytes of a refused answer's body in the error
//	min_interval_ms    pause after each message, default 1000
//
// What it shares with the WEBHOOK job is in plugins/internal/notify (the
// settings and env, the POST and what its answer means), whose HTTP
// clients are built on the guard of sdk/egress. It imports sdk and
// notify, never the host.
package main
