package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/sdk/egress"
)

// Defaults of the settings.
const (
	defaultRequestTimeout = 30 * time.Second
	defaultMaxRefresh     = 60 * time.Second
)

// Settings are plugin_config.scan in the host's configuration.
type Settings struct {
	AllowedNetworks       []string `json:"allowed_networks,omitempty" jsonschema:"description=networks (CIDR or single IPs) of scanner adapters that may be called although they are loopback/private/link-local or otherwise refused"`
	RequestTimeoutSeconds *int     `json:"request_timeout_seconds,omitempty" jsonschema:"minimum=1,maximum=600,description=timeout of each call to the adapter in seconds (default 30)"`
	MaxRefreshSeconds     *int     `json:"max_refresh_after_seconds,omitempty" jsonschema:"minimum=1,maximum=3600,description=the longest Refresh-After honoured in seconds (default 60); a longer one is cut to it"`
}

// holder keeps the resolved settings: Configure sets them, the host's
// calls read them from any goroutine.
type holder struct{ cur atomic.Pointer[caller] }

// caller is what the settings resolve to: the guard and the HTTP clients
// every run shares.
type caller struct {
	guard      *egress.Guard
	maxRefresh time.Duration
	// clients[0] verifies the adapter's certificate, clients[1] does not
	// (registration.skip_cert_verify).
	clients [2]*http.Client
}

// Configure resolves s; an error names the setting and keeps the host
// from starting. It is the plugin's sdk.WithConfig.
func (h *holder) Configure(s Settings) error {
	c, err := resolve(s)
	if err != nil {
		return err
	}
	h.cur.Store(c)
	return nil
}

// load returns the settings in force (the defaults before Configure,
// which the host always calls first).
func (h *holder) load() *caller {
	if c := h.cur.Load(); c != nil {
		return c
	}
	c, _ := resolve(Settings{})
	h.cur.CompareAndSwap(nil, c)
	return h.cur.Load()
}

func resolve(s Settings) (*caller, error) {
	for i, n := range s.AllowedNetworks {
		if _, err := egress.New([]string{n}); err != nil {
			return nil, fmt.Errorf(`setting "allowed_networks[%d]" must be a network in CIDR notation (such as "10.0.0.0/8") or an IP address, got %q`, i, n)
		}
	}
	g, err := egress.New(s.AllowedNetworks)
	if err != nil {
		return nil, err
	}
	timeout := defaultRequestTimeout
	if s.RequestTimeoutSeconds != nil {
		if *s.RequestTimeoutSeconds < 1 {
			return nil, fmt.Errorf(`setting "request_timeout_seconds" must be at least 1, got %d`, *s.RequestTimeoutSeconds)
		}
		timeout = time.Duration(*s.RequestTimeoutSeconds) * time.Second
	}
	c := &caller{guard: g, maxRefresh: defaultMaxRefresh}
	if s.MaxRefreshSeconds != nil {
		if *s.MaxRefreshSeconds < 1 {
			return nil, fmt.Errorf(`setting "max_refresh_after_seconds" must be at least 1, got %d`, *s.MaxRefreshSeconds)
		}
		c.maxRefresh = time.Duration(*s.MaxRefreshSeconds) * time.Second
	}
	for i, skip := range []bool{false, true} {
		c.clients[i] = &http.Client{
			Transport: g.Transport(&tls.Config{InsecureSkipVerify: skip}),
			Timeout:   timeout,
			// A 302 is the API's "not ready": never followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}
