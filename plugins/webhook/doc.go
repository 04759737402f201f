// Command webhook is the WEBHOOK job plugin: Harbor's webhook
// notification job, which POSTs an event to a receiver.
//
// A WEBHOOK job POSTs payload to address once per run. The header
// parameter, the JSON of an HTTP header map as Harbor's core encodes it
// ({"Content-Type":["application/json"],"Authorization":["..."]}),
// replaces the request's headers; without it the request says
// Content-Type: application/json, and auth_header (what older Harbor cores
// send) sets Authorization. skip_cert_verify skips the check of the
// receiver's certificate. Proxies come from HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY; redirects are not followed.
//
// A 2xx answer is success. Any other answer is an error that gives the
// status and the first bytes of the body (512 by default): a 5xx, a 408, a
// 425, a 429 or a temporary redirect is retried, while another 4xx or a
// permanent redirect fails at once, since a retry sends the same request
// to the same address. A network error or timeout is retried.
//
// Like Harbor, the job allows JOBSERVICE_WEBHOOK_JOB_MAX_RETRY failed runs
// (default 3) and gives each POST JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT
// seconds (default 3; 0 is none); a value that is not a whole number keeps
// the host from starting, where Harbor ignores it.
//
// The address is guarded against server-side request forgery, as in
// Harbor: an address whose host is or resolves to a loopback, private,
// link-local, unspecified or other special-purpose address (cloud metadata
// among them) is refused, for good, with a message naming the address and
// the range. The resolved address is checked at every dial, so neither DNS
// rebinding nor a second address of a name gets through; a request that
// goes through a proxy has its target resolved and checked first. An
// address that can be refused without the network (not http or https, no
// host, an IP in a refused range) is refused at submission with a 400.
//
// Settings (plugin_config.webhook in the host's configuration):
//
//	allowed_networks   list of networks (CIDR) or IPs that may be called
//	                   although refused by default, e.g. ["10.0.0.0/8"]
//	max_fails          failed runs allowed (wins over the env variable)
//	timeout_seconds    HTTP timeout (wins over the env variable)
//	body_excerpt_bytes bytes of a refused answer's body in the error, 0 to
//	                   4096, default 512. Harbor now keeps none, so that a
//	                   webhook cannot read an internal service's answers
//	                   through the job's log; with the guard that takes an
//	                   operator's allowed_networks, and 0 restores Harbor's.
//
// The settings and env, the POST and what its answer means are
// plugins/internal/notify, shared with plugins/slack; the guard is
// sdk/egress, which notify builds the HTTP clients on. It imports sdk and
// notify, never the host.
package main
