// Package egress guards a job's outgoing connections against server-side
// request forgery. It is for a job that calls addresses its users give (a
// webhook's receiver, a registry to replicate to, a scanner's adapter):
// such an address must not reach what only the job's host can reach, the
// host itself, its cluster's private network or the cloud's metadata
// service.
//
// A Guard, made by New from the networks the operator allows, refuses a
// connection to an address in a loopback, private, link-local,
// unspecified, shared (carrier-grade NAT), multicast, reserved, IPv4
// translated or embedding (NAT64, 6to4, Teredo, IPv4-compatible),
// site-local or cloud metadata range, unless an allowed network holds it.
// An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is checked as the IPv4
// address it holds.
//
// The check is made when the connection is dialled (net.Dialer's
// Control), against the address being connected to, after the name was
// resolved: a name that resolves to a public address when it is checked
// and to a private one when it is called (DNS rebinding), a name with
// several addresses, and a redirect to another address all meet it. Take
// the guard's HTTP transport, with your TLS settings, and build clients
// from it:
//
//	guard, err := egress.New(settings.AllowedNetworks)
//	if err != nil {
//		return err // names the bad entry
//	}
//	client := &http.Client{Transport: guard.Transport(nil), Timeout: 10 * time.Second}
//
// A request through a proxy (HTTP_PROXY, HTTPS_PROXY and NO_PROXY are
// honoured) is dialled by the proxy, so its target is resolved and checked
// before it is handed over; the proxy itself, which the operator chose,
// is not checked.
//
// A refused connection fails its request with a *RefusedError, which
// names the address and the range; find it with errors.As and fail the
// job for good (sdk.Permanent), since every retry meets the same refusal.
// To refuse a bad address at submission rather than at run time, Check
// the host of a URL when it is a literal IP: a name cannot be checked
// until it is dialled.
//
// The guard decides where connections may go, nothing else: following
// redirects, timeouts and what is sent are the client's.
package egress
