// Package api owns Berth's REST API, the HTTP face of the job service: the
// routes under /api/v1 that Harbor's core calls, their authentication, the
// decoding and checking of what a caller sends, and the JSON shapes and
// status codes it gets back. Everything on the wire here is compatible with
// Harbor 2.x's job service (docs/harbor-compat.md, sections 1 and 2).
//
// It owns no job logic. New takes a Backend, which submits, finds, lists
// and acts on jobs; the package only turns HTTP into Backend calls and
// Backend answers into HTTP.
//
// What the package decides itself:
//
//   - Authentication: every route but GET /api/v1/stats needs
//     "Authorization: Harbor-Secret <secret>", compared in constant time
//     with Options.Secret (CORE_SECRET). An empty configured secret refuses
//     every call. Authentication runs first, before routing, so unknown
//     paths (/api/v1/stats/ among them) answer 401 to a caller without the
//     secret and 404 only to one with it.
//   - Input checks, each a 400 that says what was wrong and what to send:
//     JSON bodies (code 10001), RequestJob.Check (10013), job IDs
//     (job.ValidID, checked before the Backend sees the ID), query values
//     (page_number, page_size, kind, cursor, non_dead_only; Harbor ignores
//     invalid ones, Berth names them). Bodies larger than
//     Options.MaxBodyBytes answer 413.
//   - The one mapping from errors to HTTP statuses and Harbor's error codes
//     (errors.go, func classify): the job package's errors become 404, 400,
//     409 and 501; anything else is a 500 with the endpoint's Harbor code
//     and the error's text as details.
//   - Error bodies: always {"code":...,"message":"...","details":"..."}
//     with Content-Type application/json, for unknown routes (404), wrong
//     methods (405) and panics (500) too. A panicking handler is logged
//     with its stack and the server keeps serving.
//   - Request logging: one debug entry per request (method, path, status,
//     duration) through go-hclog, never a header or a body.
//
// Routes are matched on the escaped path, so an ID such as
// "..%2F..%2Fetc%2Fpasswd" stays one path segment and is refused by the ID
// check instead of being decoded into a path.
package api
