package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// refusedRanges are checked in order; the first that holds an address
// names it. IPv4-mapped IPv6 addresses are checked as IPv4.
var refusedRanges = func() []RefusedError {
	rs := []struct{ cidr, reason string }{
		{"0.0.0.0/8", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared address space (carrier-grade NAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata)"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"168.63.129.16/32", "cloud metadata (Azure)"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible"},
		{"64:ff9b::/96", "IPv4-translated (NAT64)"},
		{"64:ff9b:1::/48", "IPv4-translated (NAT64)"},
		{"100::/64", "discard"},
		{"2001::/32", "Teredo"},
		{"2002::/16", "6to4"},
		{"fc00::/7", "private (unique local)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]RefusedError, len(rs))
	for i, r := range rs {
		out[i] = RefusedError{Range: netip.MustParsePrefix(r.cidr), Reason: r.reason}
	}
	return out
}()

// RefusedError is the error of an address the guard does not let a
// connection reach. Find it with errors.As in the error of a request
// (http.Client.Do wraps it) or take it from Check. A refusal is for good:
// the same address is refused again, so a job should not retry it.
type RefusedError struct {
	// Addr is the address refused; an IPv4-mapped IPv6 address is given
	// as its IPv4 address.
	Addr netip.Addr
	// Range is the refused range that holds Addr; the zero Prefix when
	// Addr is not a valid address.
	Range netip.Prefix
	// Reason says what the range is: "loopback", "private", "link-local
	// (cloud metadata)" and so on.
	Reason string
}

// Error names the address and the range:
// "127.0.0.1 is in 127.0.0.0/8 (loopback), a range this service does not call".
func (e *RefusedError) Error() string {
	if !e.Range.IsValid() {
		return fmt.Sprintf("%q is not an address this service calls", e.Addr)
	}
	return fmt.Sprintf("%s is in %s (%s), a range this service does not call", e.Addr, e.Range, e.Reason)
}

// Guard checks every address a job's outgoing connections go to. Make
// one with New from the operator's allowed networks, then take HTTP
// transports from it (Transport), as many as there are TLS settings to
// serve; one Guard may serve any number of them, from any goroutine. The
// zero Guard is New(nil)'s: every refused range refused, none allowed. A
// Guard must not be copied after first use.
type Guard struct {
	allowed []netip.Prefix
	// proxies holds the host:port of the proxies requests went through:
	// the operator's configuration (HTTP_PROXY, HTTPS_PROXY), which may
	// well be on a refused address, so dials to them are not checked.
	// At most a few entries.
	proxies sync.Map
}

// New returns a guard that refuses the loopback, private, link-local,
// unspecified and other special-purpose ranges (cloud metadata among
// them) except where allowed holds the address: each entry is a network
// in CIDR notation ("10.0.0.0/8", "fd00::/8") or a single IP address
// ("10.1.2.3"); an allowed network wins over every refused range. An
// entry that is neither is an error that names it and its index.
func New(allowed []string) (*Guard, error) {
	g := &Guard{}
	for i, s := range allowed {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, fmt.Errorf(`guard: allowed network %d, %q, must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address`, i, s)
		}
		g.allowed = append(g.allowed, p)
	}
	return g, nil
}

func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("not a network")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Check says whether the guard lets a connection to ip through: nil, or
// a *RefusedError naming the range ip is in. A connection is checked
// when it is dialled anyway; Check is for refusing, before anything is
// sent, an address whose host is a literal IP (a job's Validate, say,
// which then answers the submission with a 400). A name is checked only
// when dialled, against each address it resolves to then.
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return &RefusedError{Addr: ip}
	}
	// A zone is only for link-local addresses, which are refused anyway;
	// Contains ignores addresses with one.
	ip = ip.Unmap().WithZone("")
	for _, p := range g.allowed {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, r := range refusedRanges {
		if r.Range.Contains(ip) {
			r.Addr = ip
			return &r
		}
	}
	return nil
}

// Transport returns an HTTP transport whose every connection the guard
// checks, with the timeouts and pool of http.DefaultTransport. The
// address is checked at every dial, after the name is resolved and
// before the connection is made, so DNS rebinding, a name with several
// addresses, a redirect and a retry all meet the check; a refused dial
// fails the request with a *RefusedError.
//
// Proxies are those of the environment (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY). A proxy is the operator's and may be on a refused address,
// so dials to it are not checked; a request that goes through one has its
// target resolved and checked before it is handed over.
//
// tlsConfig is the caller's TLS settings (client certificates, roots,
// InsecureSkipVerify), cloned; nil is Go's defaults. Either way the
// transport speaks TLS 1.2 or later unless tlsConfig says a MinVersion.
// Do not replace the transport's DialContext, DialTLSContext or Proxy:
// the guard is in them.
func (g *Guard) Transport(tlsConfig *tls.Config) *http.Transport {
	return g.transport(tlsConfig, http.ProxyFromEnvironment)
}

// transport is Transport with the choice of a proxy given (tests choose
// theirs; the environment's is read once per process).
func (g *Guard) transport(tlsConfig *tls.Config, pick func(*http.Request) (*url.URL, error)) *http.Transport {
	cfg := tlsConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return &http.Transport{
		Proxy:                 g.proxyFunc(pick),
		DialContext:           g.dial,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// control runs at every dial, after the name was resolved and before the
// connection is made, with the address being connected to.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("guard: dial address %q: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("guard: dial address %q: %w", address, err)
	}
	return g.Check(ip)
}

func (g *Guard) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if _, ok := g.proxies.Load(address); !ok {
		d.Control = g.control
	}
	return d.DialContext(ctx, network, address)
}

// proxyFunc wraps the choice of a proxy: through a proxy, the proxy
// resolves and connects, so the target is checked here, by resolving it;
// a direct request to the address of a proxy is checked the same way,
// since its dial is not.
func (g *Guard) proxyFunc(pick func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		p, err := pick(req)
		if err != nil {
			return nil, err
		}
		if p == nil {
			if _, ok := g.proxies.Load(canonicalAddr(req.URL)); ok {
				return nil, g.checkHost(req.Context(), req.URL.Hostname())
			}
			return nil, nil
		}
		if err := g.checkHost(req.Context(), req.URL.Hostname()); err != nil {
			return nil, err
		}
		g.proxies.Store(canonicalAddr(p), true)
		return p, nil
	}
}

// checkHost checks every address host resolves to.
func (g *Guard) checkHost(ctx context.Context, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.Check(ip)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("guard: %q cannot be resolved, so it cannot be checked before it goes to the proxy", host)
	}
	for _, ip := range ips {
		if err := g.Check(ip); err != nil {
			return err
		}
	}
	return nil
}

// canonicalAddr is the host:port net/http dials for u.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(u.Hostname(), port)
}
