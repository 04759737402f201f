package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/plugins/scan/scanapi"
	"github.com/berth-dev/berth/sdk"
	"github.com/berth-dev/berth/sdk/egress"
)

// Bounds of what is read from the adapter.
const (
	maxReport  = 32 << 20
	maxMessage = 512
	// defaultRefresh is the wait of a 302 without a Refresh-After that
	// reads (Harbor's 5 s).
	defaultRefresh = 5 * time.Second
)

// client calls one adapter for one job.
type client struct {
	c    *caller
	jb   *job
	http *http.Client
}

func newClient(c *caller, jb *job) *client {
	hc := c.clients[0]
	if jb.reg.SkipCertVerify || jb.reg.SkipCertVerifyHarbor {
		hc = c.clients[1]
	}
	return &client{c: c, jb: jb, http: hc}
}

// endpoint is the URL of an API path ("/metadata") under the adapter's
// base URL and /api/v1.
func (cl *client) endpoint(path, query string) string {
	u := *cl.jb.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1" + path
	u.RawPath, u.RawQuery, u.Fragment = "", query, ""
	return u.String()
}

// authorize sets the registration's auth, as Harbor's client does.
func (cl *client) authorize(req *http.Request) {
	cred := cl.jb.reg.AccessCredential
	switch cl.jb.auth {
	case authBasic:
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	case authBearer:
		req.Header.Set("Authorization", "Bearer "+cred)
	case authAPIKey:
		req.Header.Set(scanapi.HeaderAPIKey, cred)
	}
}

// call makes one request: its status, headers and body (at most
// maxReport bytes).
func (cl *client) call(ctx context.Context, method, path, query, accept, contentType string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.endpoint(path, query), rd)
	if err != nil {
		return nil, nil, sdk.Permanent(fmt.Errorf("%s %s: %v", method, path, err))
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	cl.authorize(req)
	resp, err := cl.http.Do(req)
	if err != nil {
		var refused *egress.RefusedError
		if errors.As(err, &refused) {
			return nil, nil, sdk.Permanent(fmt.Errorf("%s %s refused: %w (the operator may allow it with plugin_config.scan.allowed_networks)", method, cl.shown(path), refused))
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL
		}
		return nil, nil, fmt.Errorf("scanner adapter: %s %s: %w", method, cl.shown(path), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReport+1))
	if err != nil {
		return nil, nil, fmt.Errorf("scanner adapter: %s %s: read the answer: %w", method, cl.shown(path), err)
	}
	if len(raw) > maxReport {
		return nil, nil, sdk.Permanent(fmt.Errorf("scanner adapter: %s %s: the answer is larger than %d MiB", method, cl.shown(path), maxReport>>20))
	}
	return resp, raw, nil
}

func (cl *client) shown(path string) string {
	u := *cl.jb.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1" + path
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// apiError is a non-success answer as the job's error: the status, and
// the adapter's {"error":{"message"}}. Not retried: the adapter has
// spoken.
func (cl *client) apiError(method, path string, resp *http.Response, raw []byte) error {
	msg := fmt.Sprintf("scanner adapter: %s %s answered %d %s", method, cl.shown(path), resp.StatusCode, http.StatusText(resp.StatusCode))
	var e scanapi.ErrorResponse
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		msg += ": " + clip(e.Error.Message)
	} else if s := clip(string(raw)); s != "" {
		msg += ": " + s
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += fmt.Sprintf(" (the adapter refused the registration's auth %q: check registration.auth and registration.access_credential)", orNone(cl.jb.auth))
	case http.StatusFound, http.StatusMovedPermanently, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		msg += "; redirects are not followed"
	}
	return sdk.Permanent(errors.New(msg))
}

// clip makes s one line of at most maxMessage bytes.
func clip(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// metadata gets the adapter's metadata.
func (cl *client) metadata(ctx context.Context) (*scanapi.Metadata, error) {
	const path = "/metadata"
	resp, raw, err := cl.call(ctx, http.MethodGet, path, "", scanapi.MimeMetadata11+", "+scanapi.MimeMetadata, "", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, cl.apiError(http.MethodGet, path, resp, raw)
	}
	var md scanapi.Metadata
	if err := json.Unmarshal(raw, &md); err != nil {
		return nil, sdk.Permanent(fmt.Errorf("scanner adapter: GET %s: the answer is not the scanner's metadata: %v", cl.shown(path), err))
	}
	return &md, nil
}

// submit posts the scan request and returns its ID.
func (cl *client) submit(ctx context.Context) (string, error) {
	const path = "/scan"
	body, err := json.Marshal(cl.jb.req)
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("encode the scan request: %w", err))
	}
	ct := scanapi.MimeScanRequest
	if len(cl.jb.req.EnabledCapabilities) > 0 {
		ct = scanapi.MimeScanRequest11
	}
	resp, raw, err := cl.call(ctx, http.MethodPost, path, "", scanapi.MimeScanResponse, ct, body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", cl.apiError(http.MethodPost, path, resp, raw)
	}
	var sr scanapi.ScanResponse
	if err := json.Unmarshal(raw, &sr); err != nil || sr.ID == "" {
		return "", sdk.Permanent(fmt.Errorf("scanner adapter: POST %s: the answer has no scan request id: %s", cl.shown(path), clip(string(raw))))
	}
	return sr.ID, nil
}

// report asks for one report once: the report, or how long to wait (a
// 302), or the adapter's error.
func (cl *client) report(ctx context.Context, id, mimeType, sbomFormat string) (json.RawMessage, time.Duration, error) {
	path := "/scan/" + url.PathEscape(id) + "/report"
	q := ""
	if sbomFormat != "" {
		q = url.Values{scanapi.QuerySBOMMediaType: {sbomFormat}}.Encode()
	}
	resp, raw, err := cl.call(ctx, http.MethodGet, path, q, mimeType, "", nil)
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if !json.Valid(raw) {
			return nil, 0, sdk.Permanent(fmt.Errorf("scanner adapter: GET %s: the report %s is not JSON", cl.shown(path), mimeType))
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, 0, sdk.Permanent(fmt.Errorf("scanner adapter: GET %s: %v", cl.shown(path), err))
		}
		return compact.Bytes(), 0, nil
	case http.StatusFound:
		wait := defaultRefresh
		if v := strings.TrimSpace(resp.Header.Get(scanapi.HeaderRefreshAfter)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				wait = time.Duration(min(n, 86400)) * time.Second
			}
		}
		return nil, max(wait, time.Second), nil
	}
	return nil, 0, cl.apiError(http.MethodGet, path, resp, raw)
}
