package oci

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/sdk/egress"
)

// Registry types, as Harbor names them. Both speak the distribution API;
// a Harbor answers with a Bearer challenge to its token service, which
// go-containerregistry's transport follows.
const (
	TypeDockerRegistry = "docker-registry"
	TypeHarbor         = "harbor"
)

// Credential types, as Harbor names them.
const (
	// CredentialBasic: access_key and access_secret are a user name and
	// password, sent as Basic auth or to the registry's token service.
	CredentialBasic = "basic"
	// CredentialOAuth is read as basic, as Harbor's registry adapters do:
	// access_key and access_secret go to the registry's token service.
	CredentialOAuth = "oauth"
	// CredentialSecret: access_secret is Harbor's shared secret, sent as
	// "Authorization: Harbor-Secret <secret>" (a Harbor's local registry).
	CredentialSecret = "secret"
)

// ErrAuth is the error of a registry that refuses the credential (or
// wants one when there is none). Find it with errors.Is; a retry with the
// same credential meets the same refusal.
var ErrAuth = errors.New("authentication failed")

// Credential is Harbor's registry credential.
type Credential struct {
	Type         string `json:"type,omitempty"`
	AccessKey    string `json:"access_key,omitempty"`
	AccessSecret string `json:"access_secret,omitempty"`
}

// Registry is a registry as Harbor's replication parameters give it.
// Harbor's other fields (id, name, status, times...) are ignored.
type Registry struct {
	Type       string      `json:"type"`
	URL        string      `json:"url"`
	Credential *Credential `json:"credential,omitempty"`
	Insecure   bool        `json:"insecure,omitempty"`
}

// Check checks r as far as it can be without the network: a known type, an
// http or https URL with a host and no user, path, query or fragment, a
// literal IP the guard lets through, a known credential type. field is how
// the error names r ("src_resource.registry"): it names the field at
// fault quoted, `"src_resource.registry.url" must be ...`.
func (r Registry) Check(field string, guard *egress.Guard) error {
	_, err := r.parse(field, guard)
	return err
}

func (r Registry) parse(field string, guard *egress.Guard) (*url.URL, error) {
	q := func(sub string) string { return strconv.Quote(field + "." + sub) }
	switch r.Type {
	case TypeDockerRegistry, TypeHarbor:
	case "":
		return nil, fmt.Errorf("%s must be %q or %q, got none", q("type"), TypeDockerRegistry, TypeHarbor)
	default:
		return nil, fmt.Errorf("%s must be %q or %q, got %q", q("type"), TypeDockerRegistry, TypeHarbor, r.Type)
	}
	u, err := url.Parse(strings.TrimSpace(r.URL))
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL: it may hold a password
		}
		return nil, fmt.Errorf("%s must be an http or https URL: %v", q("url"), err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		what := "no scheme"
		if u.Scheme != "" {
			what = fmt.Sprintf("scheme %q", u.Scheme)
		}
		return nil, fmt.Errorf("%s must be an http or https URL, got one with %s", q("url"), what)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf("%s must be an http or https URL with a host", q("url"))
	case u.User != nil:
		return nil, fmt.Errorf("%s must not hold a user or password: give them in %s", q("url"), q("credential"))
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s must be the registry's base URL (scheme, host and port), got one with a path, query or fragment", q("url"))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s has port %q, which must be from 1 to 65535", q("url"), p)
		}
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && guard != nil {
		if err := guard.Check(ip); err != nil {
			return nil, fmt.Errorf("%s (%s) is refused: %w", q("url"), u.Host, err)
		}
	}
	if c := r.Credential; c != nil {
		switch c.Type {
		case "", CredentialBasic, CredentialOAuth:
			if c.AccessKey == "" && c.AccessSecret != "" {
				return nil, fmt.Errorf("%s must be the user name of a basic credential, got none", q("credential.access_key"))
			}
		case CredentialSecret:
			if c.AccessSecret == "" {
				return nil, fmt.Errorf("%s must be Harbor's secret of a %q credential, got none", q("credential.access_secret"), c.Type)
			}
		default:
			return nil, fmt.Errorf("%s must be %q, %q or %q, got %q", q("credential.type"), CredentialBasic, CredentialOAuth, CredentialSecret, c.Type)
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Client talks to one registry with one credential. It is safe for
// concurrent use.
type Client struct {
	reg    name.Registry
	opts   []name.Option
	base   *url.URL
	auth   authn.Authenticator
	rt     http.RoundTripper // guarded, unauthenticated
	secret *strings.Replacer
	ua     string
}

// Dial checks r (as Check does) and makes its Client, then makes one
// authenticated call (GET /v2/) so that a refused credential fails here,
// once, with ErrAuth, rather than in every later call. field names r in
// errors; userAgent is sent with every request.
func Dial(ctx context.Context, field string, r Registry, guard *egress.Guard, userAgent string) (*Client, error) {
	base, err := r.parse(field, guard)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if base.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(base.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", strconv.Quote(field+".url"), err)
	}
	c := &Client{reg: reg, opts: opts, base: base, auth: authn.Anonymous, ua: userAgent, secret: strings.NewReplacer()}
	var rt http.RoundTripper = guard.Transport(&tls.Config{InsecureSkipVerify: r.Insecure}) //nolint:gosec // the operator's choice
	if cr := r.Credential; cr != nil && (cr.AccessSecret != "" || cr.AccessKey != "") {
		c.secret = replacer(cr)
		if cr.Type == CredentialSecret {
			rt = harborSecret{secret: cr.AccessSecret, next: rt}
		} else {
			c.auth = authn.FromConfig(authn.AuthConfig{Username: cr.AccessKey, Password: cr.AccessSecret})
		}
	}
	c.rt = rt
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// replacer replaces the secret of cr, as given and as the headers of
// Basic auth carry it, with "***".
func replacer(cr *Credential) *strings.Replacer {
	var pairs []string
	add := func(s string) {
		if s != "" {
			pairs = append(pairs, s, "***")
		}
	}
	if cr.AccessSecret != "" {
		add(base64.StdEncoding.EncodeToString([]byte(cr.AccessKey + ":" + cr.AccessSecret)))
		add(url.QueryEscape(cr.AccessSecret))
		add(cr.AccessSecret)
	}
	return strings.NewReplacer(pairs...)
}

// ping makes the first authenticated call.
func (c *Client) ping(ctx context.Context) error {
	rt, err := c.Transport(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL("/v2/"), nil)
	if err != nil {
		return c.Redact(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return c.classify("GET /v2/", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return c.classify("GET /v2/", transport.CheckError(resp, http.StatusOK))
}

// Host is the registry's host[:port], as errors and logs name it.
func (c *Client) Host() string { return c.base.Host }

// Registry is the registry, for go-containerregistry calls (Catalog).
func (c *Client) Registry() name.Registry { return c.reg }

// URL is the registry's URL of path ("/v2/...").
func (c *Client) URL(path string) string { return c.base.Scheme + "://" + c.base.Host + path }

// Repository returns the repository repo (checked with ValidRepository
// first) of the registry.
func (c *Client) Repository(repo string) (name.Repository, error) {
	if err := ValidRepository("repository", repo); err != nil {
		return name.Repository{}, err
	}
	return name.NewRepository(c.reg.Name()+"/"+repo, c.opts...)
}

// Options are the go-containerregistry remote options of a call with ctx:
// the credential, the guarded transport, the user agent. Calls made with
// them retry what go-containerregistry retries (temporary network errors
// and 5xx answers, a few times).
func (c *Client) Options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(c.auth),
		remote.WithTransport(c.rt),
		remote.WithUserAgent(c.ua),
	}
}

// Transport returns an authenticated RoundTripper for calls this package's
// callers make themselves, with the scopes they need of a token service
// ("repository:library/a:push,pull"; see name.Repository.Scope).
func (c *Client) Transport(ctx context.Context, scopes ...string) (http.RoundTripper, error) {
	rt, err := transport.NewWithContext(ctx, c.reg, c.auth, transport.NewUserAgent(c.rt, c.ua), scopes)
	if err != nil {
		return nil, c.classify("authenticate", err)
	}
	return rt, nil
}

// classify wraps err of what (an operation) with the registry's host,
// marks a refused credential with ErrAuth and redacts it.
func (c *Client) classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return c.Redact(fmt.Errorf("registry %s: %w: it refused the credential (%s answered %d %s)", c.base.Host, ErrAuth, what, terr.StatusCode, http.StatusText(terr.StatusCode)))
	}
	return c.Redact(fmt.Errorf("registry %s: %s: %w", c.base.Host, what, err))
}

// Wrap is classify for the callers' errors: err of what, with the host,
// ErrAuth for a refused credential, redacted.
func (c *Client) Wrap(what string, err error) error { return c.classify(what, err) }

// Redact returns err with the credential's secret replaced by "***" in
// its message; errors.Is and errors.As still see what it wraps. nil stays
// nil.
func (c *Client) Redact(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: c.secret.Replace(err.Error()), err: err}
}

// RedactString is Redact for a message.
func (c *Client) RedactString(s string) string { return c.secret.Replace(s) }

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// harborSecret sends Harbor's shared secret with every request that has
// no Authorization of its own.
type harborSecret struct {
	secret string
	next   http.RoundTripper
}

func (h harborSecret) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Harbor-Secret "+h.secret)
	}
	return h.next.RoundTrip(req)
}
