package egress

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	def, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := New([]string{"127.0.0.0/8", "10.1.0.0/16", "fd00::1", "::ffff:192.168.0.0/112"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip      string
		refused string // the range named, "" when called
		allowed bool   // called with allow
	}{
		{"93.184.216.34", "", true},
		{"8.8.8.8", "", true},
		{"2606:4700:4700::1111", "", true},
		{"127.0.0.1", "127.0.0.0/8 (loopback)", true},
		{"127.255.255.254", "127.0.0.0/8 (loopback)", true},
		{"::1", "::1/128 (loopback)", false},
		{"::ffff:127.0.0.1", "127.0.0.0/8 (loopback)", true},
		{"0.0.0.0", "0.0.0.0/8 (unspecified)", false},
		{"::", "::/128 (unspecified)", false},
		{"10.0.0.1", "10.0.0.0/8 (private)", false},
		{"10.1.2.3", "10.0.0.0/8 (private)", true},
		{"172.16.0.1", "172.16.0.0/12 (private)", false},
		{"172.31.255.255", "172.16.0.0/12 (private)", false},
		{"172.32.0.1", "", true},
		{"192.168.1.1", "192.168.0.0/16 (private)", true},
		{"192.169.0.1", "", true},
		{"192.0.0.8", "192.0.0.0/24 (IETF protocol assignments)", false},
		{"198.19.0.1", "198.18.0.0/15 (benchmarking)", false},
		{"169.254.169.254", "169.254.0.0/16 (link-local (cloud metadata))", false},
		{"fe80::1", "fe80::/10 (link-local)", false},
		{"fe80::1%eth0", "fe80::/10 (link-local)", false},
		{"fec0::1", "fec0::/10 (site-local)", false},
		{"fc00::1", "fc00::/7 (private (unique local))", false},
		{"fd00::1", "fc00::/7 (private (unique local))", true},
		{"fd00:ec2::254", "fc00::/7 (private (unique local))", false},
		{"100.64.0.1", "100.64.0.0/10 (shared address space (carrier-grade NAT))", false},
		{"100.100.100.200", "100.64.0.0/10 (shared address space (carrier-grade NAT))", false},
		{"168.63.129.16", "168.63.129.16/32 (cloud metadata (Azure))", false},
		{"224.0.0.1", "224.0.0.0/4 (multicast)", false},
		{"255.255.255.255", "240.0.0.0/4 (reserved)", false},
		{"64:ff9b::7f00:1", "64:ff9b::/96 (IPv4-translated (NAT64))", false},
		{"64:ff9b:1::1", "64:ff9b:1::/48 (IPv4-translated (NAT64))", false},
		{"100::1", "100::/64 (discard)", false},
		{"2001::1", "2001::/32 (Teredo)", false},
		{"2002:7f00:1::", "2002::/16 (6to4)", false},
		{"::7f00:1", "::/96 (IPv4-compatible)", false},
		{"ff02::1", "ff00::/8 (multicast)", false},
	}
	for _, tc := range tests {
		ip := netip.MustParseAddr(tc.ip)
		err := def.Check(ip)
		var r *RefusedError
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s refused: %v", tc.ip, err)
		case tc.refused != "" && (!errors.As(err, &r) || !strings.Contains(r.Error(), "is in "+tc.refused+", a range")):
			t.Errorf("%s: %v, want it refused as %s", tc.ip, err, tc.refused)
		}
		if got := allow.Check(ip) == nil; got != tc.allowed {
			t.Errorf("%s with allowed networks: called %v, want %v", tc.ip, got, tc.allowed)
		}
	}
	var r *RefusedError
	if err := def.Check(netip.Addr{}); !errors.As(err, &r) || err.Error() != `"invalid IP" is not an address this service calls` {
		t.Errorf("the zero address: %v", err)
	}
	// The refusal gives the address as checked: unmapped, without a zone.
	if err := def.Check(netip.MustParseAddr("::ffff:10.0.0.1")); !errors.As(err, &r) ||
		r.Addr != netip.MustParseAddr("10.0.0.1") || r.Range != netip.MustParsePrefix("10.0.0.0/8") || r.Reason != "private" {
		t.Errorf("mapped: %#v", err)
	}
	if err := def.Check(netip.MustParseAddr("fe80::1%eth0")); !errors.As(err, &r) || r.Addr.Zone() != "" {
		t.Errorf("zoned: %v", err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		allowed   []string
		wantErr   string   // the whole error; "" when made
		calls     []string // addresses that must be allowed
		refuses   []string // addresses still refused
		wantRange []string // the networks as kept
	}{
		{"None", nil, "", nil, []string{"127.0.0.1", "10.0.0.1"}, nil},
		{"CIDR", []string{"10.0.0.0/8"}, "", []string{"10.0.0.1", "10.255.255.255"}, []string{"127.0.0.1", "172.16.0.1"}, []string{"10.0.0.0/8"}},
		{"HostBitsMasked", []string{"10.1.2.3/16"}, "", []string{"10.1.255.1"}, []string{"10.2.0.1"}, []string{"10.1.0.0/16"}},
		{"SingleIPTrimmed", []string{" 10.1.2.3 "}, "", []string{"10.1.2.3"}, []string{"10.1.2.4"}, []string{"10.1.2.3/32"}},
		{"SingleIPv6", []string{"fd00::1"}, "", []string{"fd00::1"}, []string{"fd00::2"}, []string{"fd00::1/128"}},
		{"MappedNetwork", []string{"::ffff:192.168.0.0/112"}, "", []string{"192.168.7.7", "::ffff:192.168.7.7"}, []string{"10.0.0.1"}, []string{"192.168.0.0/16"}},
		{"MappedIP", []string{"::ffff:10.0.0.1"}, "", []string{"10.0.0.1"}, []string{"10.0.0.2"}, []string{"10.0.0.1/32"}},
		{"Everything", []string{"0.0.0.0/0", "::/0"}, "", []string{"127.0.0.1", "::1", "169.254.169.254"}, nil, []string{"0.0.0.0/0", "::/0"}},
		{"Name", []string{"10.0.0.0/8", "intranet"},
			`guard: allowed network 1, "intranet", must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address`, nil, nil, nil},
		{"BitsTooMany", []string{"10.0.0.0/33"}, `guard: allowed network 0, "10.0.0.0/33", must be`, nil, nil, nil},
		{"Zone", []string{"fe80::1%eth0"}, `guard: allowed network 0, "fe80::1%eth0", must be`, nil, nil, nil},
		{"Empty", []string{""}, `guard: allowed network 0, "", must be`, nil, nil, nil},
		{"List", []string{"10.0.0.0/8,192.168.0.0/16"}, `guard: allowed network 0, "10.0.0.0/8,192.168.0.0/16", must be`, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := New(tc.allowed)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("New(%q) = %v, want %q", tc.allowed, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q) = %v", tc.allowed, err)
			}
			var kept []string
			for _, p := range g.allowed {
				kept = append(kept, p.String())
			}
			if strings.Join(kept, " ") != strings.Join(tc.wantRange, " ") {
				t.Errorf("kept %q, want %q", kept, tc.wantRange)
			}
			for _, a := range tc.calls {
				if err := g.Check(netip.MustParseAddr(a)); err != nil {
					t.Errorf("%s: %v", a, err)
				}
			}
			for _, a := range tc.refuses {
				if err := g.Check(netip.MustParseAddr(a)); err == nil {
					t.Errorf("%s is called", a)
				}
			}
		})
	}
}

// counter is an HTTP server on loopback that counts what it got.
type counter struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []string // the request URIs
}

func newCounter(t *testing.T, answer http.HandlerFunc) *counter {
	c := &counter{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs = append(c.reqs, r.RequestURI)
		c.mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *counter) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reqs...)
}

// port is the server's port.
func (c *counter) port() string {
	u, _ := url.Parse(c.srv.URL)
	return u.Port()
}

// get GETs address with a client on tr, and returns the error only.
func get(tr http.RoundTripper, address string) error {
	resp, err := (&http.Client{Transport: tr}).Get(address)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// refused is the refusal in err, or nil.
func refused(err error) *RefusedError {
	var r *RefusedError
	if errors.As(err, &r) {
		return r
	}
	return nil
}

func TestTheTransportChecksEveryDial(t *testing.T) {
	t.Parallel()
	rc := newCounter(t, nil)
	byName := "http://localhost:" + rc.port() + "/by-name"
	var zero Guard // New(nil)'s
	def, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, tr := range map[string]*http.Transport{"Zero": zero.Transport(nil), "New": def.Transport(nil)} {
		// A literal loopback address, and a name that resolves to one (or
		// to several: each is refused).
		for _, address := range []string{rc.srv.URL + "/literal", byName} {
			err := get(tr, address)
			if r := refused(err); r == nil || r.Reason != "loopback" {
				t.Errorf("%s guard, GET %s: %v, want a loopback refusal", name, address, err)
			}
		}
	}
	if reqs := rc.requests(); len(reqs) != 0 {
		t.Fatalf("refused requests arrived: %q", reqs)
	}
	allow, err := New([]string{"127.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	tr := allow.Transport(nil)
	for _, address := range []string{rc.srv.URL + "/literal", byName} {
		if err := get(tr, address); err != nil {
			t.Errorf("allowed, GET %s: %v", address, err)
		}
	}
	if reqs := rc.requests(); strings.Join(reqs, " ") != "/literal /by-name" {
		t.Fatalf("allowed requests: %q", reqs)
	}
}

func TestARedirectIsCheckedWhenItIsDialled(t *testing.T) {
	t.Parallel()
	// The receiver is allowed; where it points is not. The refusal comes
	// before the connection, so nothing needs to listen there.
	rc := newCounter(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.0.0.1:9/inside", http.StatusFound)
	})
	g, err := New([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	err = get(g.Transport(nil), rc.srv.URL+"/hook")
	if r := refused(err); r == nil || r.Addr != netip.MustParseAddr("10.0.0.1") || r.Reason != "private" {
		t.Fatalf("GET through a redirect: %v", err)
	}
	if reqs := rc.requests(); len(reqs) != 1 {
		t.Fatalf("the receiver got %q", reqs)
	}
}

func TestTheTransportTakesTheCallersTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	g, err := New([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var unverified *tls.CertificateVerificationError
	if err := get(g.Transport(nil), srv.URL); !errors.As(err, &unverified) {
		t.Errorf("a certificate of its own, verified: %v", err)
	}
	skip := &tls.Config{InsecureSkipVerify: true}
	tr := g.Transport(skip)
	if err := get(tr, srv.URL); err != nil {
		t.Errorf("skip verify: %v", err)
	}
	// The caller's configuration is cloned, not kept.
	skip.InsecureSkipVerify = false
	if !tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig == skip {
		t.Error("the transport shares the caller's TLS configuration")
	}
	// The roots of a caller that trusts the server's certificate.
	if err := get(g.Transport(srv.Client().Transport.(*http.Transport).TLSClientConfig), srv.URL); err != nil {
		t.Errorf("the caller's roots: %v", err)
	}
	for _, tc := range []struct {
		cfg  *tls.Config
		want uint16
	}{
		{nil, tls.VersionTLS12},
		{&tls.Config{}, tls.VersionTLS12},
		{&tls.Config{MinVersion: tls.VersionTLS13}, tls.VersionTLS13},
	} {
		if got := g.Transport(tc.cfg).TLSClientConfig.MinVersion; got != tc.want {
			t.Errorf("MinVersion of %+v = %x, want %x", tc.cfg, got, tc.want)
		}
	}
}

func TestARequestThroughAProxyHasItsTargetChecked(t *testing.T) {
	t.Parallel()
	// The proxy is the operator's and may sit on a refused address (here
	// loopback, with nothing allowed); the target is what gets checked.
	proxy := newCounter(t, nil)
	proxyURL, _ := url.Parse(proxy.srv.URL)
	g, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := g.transport(nil, func(r *http.Request) (*url.URL, error) {
		if r.URL.Host == proxyURL.Host {
			return nil, nil // as NO_PROXY would
		}
		return proxyURL, nil
	})
	if err := get(tr, "http://93.184.216.34/hook"); err != nil {
		t.Fatalf("through the proxy to a public address: %v", err)
	}
	if reqs := proxy.requests(); len(reqs) != 1 || reqs[0] != "http://93.184.216.34/hook" {
		t.Fatalf("the proxy got %q", reqs)
	}
	// A target that resolves to a refused address is not handed to the
	// proxy.
	if err := get(tr, "http://localhost:9/hook"); refused(err) == nil || !strings.Contains(err.Error(), "(loopback)") {
		t.Fatalf("through the proxy to localhost: %v", err)
	}
	// Nor one that cannot be resolved here; that is not a refusal (a
	// retry may resolve it).
	if err := get(tr, "http://nowhere.invalid/hook"); err == nil || refused(err) != nil ||
		!strings.Contains(err.Error(), `guard: "nowhere.invalid" cannot be resolved`) {
		t.Fatalf("through the proxy to an unknown name: %v", err)
	}
	// The proxy's dial is not checked; a direct request to the proxy's
	// address is, all the same.
	if err := get(tr, proxy.srv.URL+"/direct"); refused(err) == nil {
		t.Fatalf("directly to the proxy's address: %v", err)
	}
	if n := len(proxy.requests()); n != 1 {
		t.Fatalf("the proxy got %d requests, want 1", n)
	}
}
