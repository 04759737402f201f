// Package notify is what Harbor's two notification jobs share beyond the
// guard of sdk/egress: it is used by plugins/webhook and plugins/slack
// only, and is no part of the sdk: Go's internal rule keeps it to the
// plugins under plugins/, and nothing promises its API to a job author.
//
// It owns:
//
//   - Settings, the part of plugin_config.webhook and plugin_config.slack
//     the two share (allowed_networks, max_fails, timeout_seconds,
//     body_excerpt_bytes), and Harbor's env variables for both jobs,
//     JOBSERVICE_WEBHOOK_JOB_MAX_RETRY and
//     JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT, which a setting wins
//     over; a value that does not parse keeps the host from starting;
//   - Holder, which keeps what they resolve to (a Sender) for the host's
//     concurrent calls, and gives the job type's MaxFails from it;
//   - Sender.Target, the check of a job's address that needs no network
//     (an http or https URL with a host, a literal IP not refused), and
//     Sender.Post, the POST of a Delivery and what its answer means: nil
//     for a 2xx, sdk.Permanent for a refused address, another 4xx or a
//     permanent redirect, sdk.Snooze for a rate-limited 429, an error to
//     retry otherwise; redirects are not followed;
//   - the error's excerpt of a refused answer's body (one line of valid
//     UTF-8, bounded), the Retry-After of a rate limit, and Redacted, how
//     an address shows in logs and errors, with no secret in it (a plugin
//     may show its addresses its own way).
package notify
