package egress_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"time"

	"github.com/berth-dev/berth/sdk/egress"
)

// A job's HTTP client built on the guard cannot reach what only the job's
// host can: here, a server on loopback, refused when the connection is
// dialled, before anything is sent.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "the host's own service")
	}))
	defer srv.Close()

	guard, err := egress.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: guard.Transport(nil)}
	_, err = client.Post(srv.URL, "application/json", nil)
	var refused *egress.RefusedError
	fmt.Println(errors.As(err, &refused))
	fmt.Println(refused)
	// Output:
	// true
	// 127.0.0.1 is in 127.0.0.0/8 (loopback), a range this service does not call
}

// A Guard is made once, from the operator's settings, and shared by the
// job's clients. The guard decides where a connection may go; the rest is
// the client's: here, a timeout, and redirects answered rather than
// followed (a followed redirect is checked too, when it is dialled).
func ExampleGuard() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()

	guard, err := egress.New([]string{"127.0.0.0/8"}) // the operator's allowed_networks, say
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{
		Transport:     guard.Transport(nil),
		Timeout:       3 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Location"))
	// Output: 302 Found /elsewhere
}

// Allowed networks are CIDR networks or single IPs; an allowed network
// wins over the refused ranges. An entry that is neither is refused,
// named.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	guard, err := egress.New([]string{"127.0.0.0/8", "fd00::1"})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := (&http.Client{Transport: guard.Transport(nil)}).Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))

	_, err = egress.New([]string{"10.0.0.0/8", "intranet"})
	fmt.Println(err)
	// Output:
	// 200 OK hello
	// guard: allowed network 1, "intranet", must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address
}

// Transport takes the caller's TLS settings: here, a receiver whose
// certificate is its own, called once with Go's defaults (the certificate
// is refused) and once with the user's skip_cert_verify. Take one
// transport for each setting and keep it: each keeps its connections.
func ExampleGuard_Transport() {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()

	guard, err := egress.New([]string{"127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}
	verify := &http.Client{Transport: guard.Transport(nil)}
	skip := &http.Client{Transport: guard.Transport(&tls.Config{InsecureSkipVerify: true})}

	_, err = verify.Get(srv.URL)
	var unverified *tls.CertificateVerificationError
	fmt.Println("verified:", errors.As(err, &unverified))

	resp, err := skip.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println("skipped:", resp.Status)
	// Output:
	// verified: true
	// skipped: 200 OK
}

// Check refuses, before anything is sent, an address whose host is a
// literal IP: a job's Validate answers such a submission with a 400. A
// name is checked when it is dialled.
func ExampleGuard_Check() {
	guard, err := egress.New([]string{"10.1.0.0/16"})
	if err != nil {
		log.Fatal(err)
	}
	for _, address := range []string{
		"http://93.184.216.34/hook",
		"http://10.1.2.3/hook",
		"http://10.2.0.1/hook",
		"http://[::ffff:127.0.0.1]:8080/hook",
		"http://169.254.169.254/latest/meta-data",
		"https://hooks.example.com/hook",
	} {
		u, err := url.Parse(address)
		if err != nil {
			log.Fatal(err)
		}
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			fmt.Printf("%s: a name, checked when dialled\n", u.Host)
			continue
		}
		fmt.Printf("%s: %v\n", u.Host, guard.Check(ip))
	}
	// Output:
	// 93.184.216.34: <nil>
	// 10.1.2.3: <nil>
	// 10.2.0.1: 10.2.0.1 is in 10.0.0.0/8 (private), a range this service does not call
	// [::ffff:127.0.0.1]:8080: 127.0.0.1 is in 127.0.0.0/8 (loopback), a range this service does not call
	// 169.254.169.254: 169.254.169.254 is in 169.254.0.0/16 (link-local (cloud metadata)), a range this service does not call
	// hooks.example.com: a name, checked when dialled
}

// A refusal is found with errors.As, in a request's error or Check's; it
// is for good, so a job fails without a retry (sdk.Permanent), and may
// tell the operator which address and range to allow.
func ExampleRefusedError() {
	guard, err := egress.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	err = fmt.Errorf("POST http://[fd00:ec2::254]/: %w", guard.Check(netip.MustParseAddr("fd00:ec2::254")))
	var refused *egress.RefusedError
	if errors.As(err, &refused) {
		fmt.Println(refused.Addr, refused.Range, refused.Reason)
	}
	// Output: fd00:ec2::254 fc00::/7 private (unique local)
}
