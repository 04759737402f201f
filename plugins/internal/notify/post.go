package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/egress"
)

// drainLimit bounds what is read of a body nobody needs, so that the
// connection can serve the next request.
const drainLimit = 64 << 10

// Target checks a job's address as far as it can be without the network:
// an http or https URL with a host, whose host, if an IP, is not refused.
// show is how the address appears in messages (Redacted, or the plugin's
// own). A bad address is the submitter's to mend: Validate refuses it,
// Run fails for good.
func (s *Sender) Target(address string, show func(*url.URL) string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the error without the address: it may hold a secret
		}
		return nil, fmt.Errorf(`parameter "address" must be an http or https URL: %v`, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		what := "no scheme"
		if u.Scheme != "" {
			what = fmt.Sprintf("scheme %q", u.Scheme)
		}
		return nil, fmt.Errorf(`parameter "address" must be an http or https URL, got one with %s`, what)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf(`parameter "address" must be an http or https URL with a host, got %s`, show(u))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf(`parameter "address" has port %q, which must be from 1 to 65535`, p)
		}
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := s.guard.Check(ip); err != nil {
			return nil, fmt.Errorf(`parameter "address" (%s) is refused: %w`, show(u), err)
		}
	}
	return u, nil
}

// Redacted is how an address appears in the job's log and errors: without
// a password, a query or a fragment, which may hold secrets.
func Redacted(u *url.URL) string {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "…", false
	}
	return c.Redacted()
}

// Delivery is one POST of a job.
type Delivery struct {
	// URL is the address, as Target returned it.
	URL *url.URL
	// Shown is the address as logs and errors show it.
	Shown   string
	Payload string
	// Header replaces the request's headers; nil sends Go's.
	Header     http.Header
	SkipVerify bool
	// RateLimited: a 429 snoozes the job for its Retry-After instead of
	// failing the run (Slack's documented rate limiting).
	RateLimited bool
}

// Post sends d and says what came of it: nil for a 2xx, sdk.Permanent
// for what a retry cannot mend, sdk.Snooze for a rate limit, otherwise an
// error that the host retries by the job type's rules. status is the
// receiver's answer, 0 when there was none.
func (s *Sender) Post(ctx sdk.Context, d Delivery) (status int, err error) {
	log := ctx.Logger()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL.String(), strings.NewReader(d.Payload))
	if err != nil {
		return 0, sdk.Permanent(fmt.Errorf("POST %s: %v", d.Shown, err))
	}
	if d.Header != nil {
		req.Header = d.Header
	}
	client := s.clients[0]
	if d.SkipVerify {
		client = s.clients[1]
	}
	log.Info("posting the payload", "address", d.Shown, "bytes", len(d.Payload))
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		var r *egress.RefusedError
		switch {
		case errors.As(err, &r):
			// Harbor keeps the setting's name out of the job's error,
			// which project admins read; the operator learns it here.
			s.warn(fmt.Sprintf("refused POST %s: %v; the operator may allow it with plugin_config.%s.allowed_networks", d.Shown, r, s.section))
			return 0, sdk.Permanent(fmt.Errorf("POST %s refused: %w", d.Shown, r))
		case ctx.Err() != nil:
			return 0, fmt.Errorf("POST %s: %w", d.Shown, context.Cause(ctx))
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may hold a secret
		}
		return 0, fmt.Errorf("POST %s: %w", d.Shown, err)
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	log.Info("answered", "status", code, "took", time.Since(start).Round(time.Millisecond))
	if code >= 200 && code < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		return code, nil
	}
	msg := fmt.Sprintf("POST %s: answered %d %s", d.Shown, code, http.StatusText(code))
	if code >= 300 && code < 400 {
		msg += "; redirects are not followed"
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += fmt.Sprintf(" (Location: %s)", clean(loc, 256))
		}
	}
	if ex := s.readExcerpt(resp.Body); ex != "" {
		msg += ": " + ex
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	switch {
	case code == http.StatusTooManyRequests && d.RateLimited:
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		return code, sdk.Snooze(wait, fmt.Sprintf("%s (rate limited; trying again in %s)", msg, wait))
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
		// The receiver asks to be asked again later.
		return code, errors.New(msg)
	case code == http.StatusMovedPermanently, code == http.StatusPermanentRedirect:
		// The address moved for good: every retry gets the same answer.
		return code, sdk.Permanent(errors.New(msg))
	case code >= 400 && code < 500:
		// The receiver refuses this request (bad payload, credentials,
		// a hook that is gone), and a retry sends the very same request.
		// Harbor retries these too; Berth does not spend the retries.
		return code, sdk.Permanent(errors.New(msg))
	}
	// 5xx (and other redirects): the receiver may do better later.
	return code, errors.New(msg)
}

// readExcerpt reads at most the configured bytes of a body, as one line
// of valid UTF-8; "…" marks a cut.
func (s *Sender) readExcerpt(body io.Reader) string {
	if s.excerpt == 0 {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(body, int64(s.excerpt)+1))
	cut := len(b) > s.excerpt
	if cut {
		b = b[:s.excerpt]
		// Do not end in the middle of a character.
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0; i++ {
			if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size != 1 {
				break
			}
			b = b[:len(b)-1]
		}
	}
	str := clean(string(b), s.excerpt)
	if cut && str != "" {
		str += "…"
	}
	return str
}

// clean makes s one line of valid UTF-8 of at most n bytes: control
// characters become spaces, runs of spaces one.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ' ' || r == '\u2028' || r == '\u2029' {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		space = false
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), " ")
}

// Bounds of a rate limit's wait: the host snoozes for a second at least,
// and a Retry-After past an hour is taken as an hour.
const (
	minRetryAfter      = time.Second
	maxRetryAfter      = time.Hour
	fallbackRetryAfter = 30 * time.Second
)

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now).Round(time.Second)
	} else {
		d = fallbackRetryAfter
	}
	return min(max(d, minRetryAfter), maxRetryAfter)
}
