package notify

import (
	"crypto/tls"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/sdk/egress"
)

// Harbor's job service reads these env variables for both of its HTTP
// jobs (src/jobservice/job/impl/notification/http_helper.go).
const (
	// envMaxRetry is the failed runs allowed (Harbor: "max retry has the
	// same meaning as max fails"), a whole number; 0 is the host default
	// of 4, as gocraft/work makes it in Harbor.
	envMaxRetry = "JOBSERVICE_WEBHOOK_JOB_MAX_RETRY"
	// envTimeout is the HTTP client's timeout in whole seconds; 0 is no
	// timeout (Go's http.Client reads it so).
	envTimeout = "JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT"

	defaultMaxFails = 3
	defaultTimeout  = 3 * time.Second
	// defaultExcerpt bounds the part of a refused answer's body that goes
	// into the error (and so the job's log and stats).
	defaultExcerpt = 512
	maxExcerpt     = 4096
)

// Settings are the settings of plugin_config.webhook and
// plugin_config.slack that the two jobs share (Slack's embeds them). A
// setting given here wins over its env variable.
type Settings struct {
	AllowedNetworks []string `json:"allowed_networks,omitempty" jsonschema:"description=networks (CIDR or single IPs) that may be called although they are loopback/private/link-local or otherwise refused"`
	MaxFails        *uint    `json:"max_fails,omitempty" jsonschema:"maximum=1000,description=failed runs allowed (overrides JOBSERVICE_WEBHOOK_JOB_MAX_RETRY; 0 is the host default)"`
	TimeoutSeconds  *int     `json:"timeout_seconds,omitempty" jsonschema:"minimum=0,maximum=3600,description=HTTP timeout in seconds (overrides JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT; 0 is none)"`
	ExcerptBytes    *int     `json:"body_excerpt_bytes,omitempty" jsonschema:"minimum=0,maximum=4096,description=bytes of a refused answer's body kept in the error (default 512; 0 keeps none)"`
}

// Holder keeps a plugin's Sender: Configure sets it, the host's calls
// (Describe, Validate, Run, from any goroutine) read it. Set its fields
// before the plugin serves; a Holder must not be copied after.
type Holder struct {
	// Section is the plugin's plugin_config key ("webhook", "slack"),
	// named in the hint to the operator about a refused address.
	Section string
	// Lookup reads an env variable (os.LookupEnv).
	Lookup func(string) (string, bool)
	// Warn tells the operator; nil writes to the plugin's stderr, which
	// the host logs.
	Warn func(string)

	cur atomic.Pointer[Sender]
}

// Sender is what a plugin's settings and env resolve to: how many failed
// runs its job type allows, the guard, and the HTTP clients its runs
// share.
type Sender struct {
	section  string
	warn     func(string)
	maxFails uint
	timeout  time.Duration
	excerpt  int
	guard    *egress.Guard
	// clients[0] verifies the receiver's certificate, clients[1] does not
	// (skip_cert_verify).
	clients [2]*http.Client
}

// Configure resolves s and the env; an error names the setting or the
// env variable, and keeps the host from starting. It is the plugin's
// sdk.WithConfig.
func (h *Holder) Configure(s Settings) error {
	out, err := h.resolve(s, h.Lookup)
	if err != nil {
		return err
	}
	h.cur.Store(out)
	return nil
}

// Load returns the configured Sender; before Configure (which the host
// always calls first) it is the env's, with Harbor's defaults for values
// that do not parse.
func (h *Holder) Load() *Sender {
	if cur := h.cur.Load(); cur != nil {
		return cur
	}
	out, err := h.resolve(Settings{}, h.Lookup)
	if err != nil {
		out, _ = h.resolve(Settings{}, func(string) (string, bool) { return "", false })
	}
	h.cur.CompareAndSwap(nil, out)
	return h.cur.Load()
}

// MaxFails is the job type's: it is asked at every Describe, before
// Configure too, where a value the env cannot give is Harbor's default
// (and Configure refuses it).
func (h *Holder) MaxFails() uint {
	if cur := h.cur.Load(); cur != nil {
		return cur.maxFails
	}
	n, err := envMaxFails(h.Lookup)
	if err != nil {
		return defaultMaxFails
	}
	return n
}

func (h *Holder) resolve(s Settings, lookup func(string) (string, bool)) (*Sender, error) {
	out := &Sender{section: h.Section, warn: h.Warn, maxFails: defaultMaxFails, timeout: defaultTimeout, excerpt: defaultExcerpt}
	if out.warn == nil {
		out.warn = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
	}
	if s.MaxFails != nil {
		out.maxFails = *s.MaxFails
	} else if n, err := envMaxFails(lookup); err != nil {
		return nil, err
	} else {
		out.maxFails = n
	}
	if s.TimeoutSeconds != nil {
		if *s.TimeoutSeconds < 0 {
			return nil, fmt.Errorf(`setting "timeout_seconds" must be 0 (no timeout) or more, got %d`, *s.TimeoutSeconds)
		}
		out.timeout = time.Duration(*s.TimeoutSeconds) * time.Second
	} else if d, err := envTimeoutSeconds(lookup); err != nil {
		return nil, err
	} else {
		out.timeout = d
	}
	if s.ExcerptBytes != nil {
		if *s.ExcerptBytes < 0 || *s.ExcerptBytes > maxExcerpt {
			return nil, fmt.Errorf(`setting "body_excerpt_bytes" must be from 0 to %d, got %d`, maxExcerpt, *s.ExcerptBytes)
		}
		out.excerpt = *s.ExcerptBytes
	}
	// egress.New names a bad entry in its own words; each is tried first
	// so that the error names it as the setting.
	for i, n := range s.AllowedNetworks {
		if _, err := egress.New([]string{n}); err != nil {
			return nil, fmt.Errorf(`setting "allowed_networks[%d]" must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address, got %q`, i, n)
		}
	}
	g, err := egress.New(s.AllowedNetworks)
	if err != nil {
		return nil, err
	}
	out.guard = g
	out.build()
	return out, nil
}

// envMaxFails reads envMaxRetry, a whole number (Harbor:
// strconv.ParseUint(v, 10, 32)); unset is Harbor's default. Harbor logs a
// bad value and goes on with the default; Berth refuses it, naming the
// variable.
func envMaxFails(lookup func(string) (string, bool)) (uint, error) {
	v, ok := lookup(envMaxRetry)
	if !ok {
		return defaultMaxFails, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("env %s must be a whole number (the failed runs allowed), got %q", envMaxRetry, v)
	}
	return uint(n), nil
}

// envTimeoutSeconds reads envTimeout, whole seconds (Harbor:
// strconv.ParseInt(v, 10, 64) seconds); unset is Harbor's 3 s.
func envTimeoutSeconds(lookup func(string) (string, bool)) (time.Duration, error) {
	v, ok := lookup(envTimeout)
	if !ok {
		return defaultTimeout, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("env %s must be a whole number of seconds (0: no timeout), got %q", envTimeout, v)
	}
	return time.Duration(n) * time.Second, nil
}

// build makes the two clients on the guard's transports. Neither follows
// redirects (Harbor's blockRedirect): following one would send the
// payload wherever the receiver points (the dial-time check would still
// apply, but Validate's would not), and turn the POST into a GET on
// 301-303; a 3xx is an answer like any other, and the error says where it
// pointed.
func (s *Sender) build() {
	for i, skip := range []bool{false, true} {
		s.clients[i] = &http.Client{
			Transport:     s.guard.Transport(&tls.Config{InsecureSkipVerify: skip}),
			Timeout:       s.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}
