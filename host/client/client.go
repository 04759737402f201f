package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one Berth (or Harbor job service) REST API.
type Client struct {
	base   string // scheme://host[:port], no trailing slash
	auth   string // the Authorization header, "" without a secret
	http   *http.Client
	poll   time.Duration
	header http.Header
	hook   func(*Answer)
}

// Option changes a Client.
type Option func(*Client)

// WithHTTPClient sends the requests with hc (default: a client with a 30s
// timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithPollInterval sets how often Wait reads a job (default 100ms).
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// Answer is one answer of the API as it arrived, before it is decoded.
type Answer struct {
	// Method and Path are the request's (Path under /api/v1, without the
	// query).
	Method, Path string
	// Status is the HTTP status.
	Status int
	Header http.Header
	// Body is the whole body; the hook must not change it.
	Body []byte
}

// WithAnswerHook calls f with every answer of the API, errors included,
// before the call decodes it, on the goroutine of the call: for a program
// that shows the API's own JSON (berthctl -o json) or logs the exchanges.
func WithAnswerHook(f func(*Answer)) Option { return func(c *Client) { c.hook = f } }

// New returns a client of the API at baseURL (http:// or https://, with
// or without the /api/v1 suffix) that authenticates with secret
// (CORE_SECRET; empty sends no Authorization header, which only
// GET /api/v1/stats accepts).
func New(baseURL, secret string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	base := strings.TrimSuffix(strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), "/api/v1")
	c := &Client{base: base, http: &http.Client{Timeout: 30 * time.Second}, poll: 100 * time.Millisecond}
	if secret != "" {
		c.auth = "Harbor-Secret " + secret
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// APIError is an error answer of the API.
type APIError struct {
	// Status is the HTTP status.
	Status int
	ErrorBody
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("berth: %d", e.Status)
	if e.Message != "" {
		msg += " " + e.Message
	}
	if e.Details != "" {
		msg += ": " + e.Details
	}
	return msg
}

// Is matches the sentinel errors by HTTP status (and, for
// ErrStatusMismatch, Harbor's code 10016).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrStatusMismatch:
		return e.Status == http.StatusConflict && e.Code == codeStatusMismatch
	}
	return false
}

// codeStatusMismatch is Harbor's code of an action that does not fit the
// job's status.
const codeStatusMismatch = 10016

// Sentinel errors, matched by errors.Is against an *APIError.
var (
	ErrNotFound       = errors.New("not found")
	ErrBadRequest     = errors.New("bad request")
	ErrUnauthorized   = errors.New("unauthorized")
	ErrConflict       = errors.New("conflict")
	ErrStatusMismatch = errors.New("the action does not fit the job's status")
)

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	u := c.base + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: read the answer: %w", method, path, err)
	}
	if c.hook != nil {
		c.hook(&Answer{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: raw})
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(raw, &e.ErrorBody) != nil {
			e.Details = strings.TrimSpace(string(raw))
		}
		return resp.Header, e
	}
	if out != nil {
		if b, ok := out.(*[]byte); ok {
			*b = raw
		} else if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("client: %s %s: the answer is not the JSON expected: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// Submit submits a job and returns its stats.
func (c *Client) Submit(ctx context.Context, job RequestJob) (*Stats, error) {
	var env Envelope
	if _, err := c.do(ctx, http.MethodPost, "/jobs", nil, Request{Job: &job}, &env); err != nil {
		return nil, err
	}
	if env.Job == nil {
		return nil, errors.New("client: the submission's answer holds no job")
	}
	return env.Job, nil
}

// Get returns a job's stats.
func (c *Client) Get(ctx context.Context, id string) (*Stats, error) {
	var env Envelope
	if _, err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), nil, nil, &env); err != nil {
		return nil, err
	}
	if env.Job == nil {
		return nil, fmt.Errorf("client: the answer for job %s holds no job", id)
	}
	return env.Job, nil
}

// Act applies stop, cancel or retry to a job.
func (c *Client) Act(ctx context.Context, id string, action Action) error {
	_, err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(id), nil, ActionRequest{Action: action}, nil)
	return err
}

// Stop asks a job to stop.
func (c *Client) Stop(ctx context.Context, id string) error { return c.Act(ctx, id, ActionStop) }

// Cancel cancels a job: it ends Stopped and its plugin sees OPCancel.
func (c *Client) Cancel(ctx context.Context, id string) error { return c.Act(ctx, id, ActionCancel) }

// Retry runs a job in Error again at once, under the same ID.
func (c *Client) Retry(ctx context.Context, id string) error { return c.Act(ctx, id, ActionRetry) }

// Log returns a job's log (the last max_retrieve_size_mb of it).
func (c *Client) Log(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	if _, err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id)+"/log", nil, nil, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// ListOptions select a page of GET /api/v1/jobs. Zero values are the
// API's defaults.
type ListOptions struct {
	// Kind Scheduled pages the jobs waiting for their run time, Periodic
	// the active policies; Generic, or none, the jobs through Cursor.
	Kind Kind
	// Status and Name filter the jobs (not with Kind Scheduled or
	// Periodic).
	Status Status
	Name   string
	// Cursor continues a listing at the previous page's NextCursor.
	Cursor string
	// PageNumber and PageSize page kind=Scheduled and kind=Periodic.
	PageNumber, PageSize int
}

// Page is one page of a listing.
type Page struct {
	Jobs []*Stats
	// Total is the size of the whole listing; -1 when the API does not
	// say (cursor listings).
	Total int64
	// NextCursor continues a cursor listing; "0" (or "") when it ended.
	NextCursor string
}

// List returns one page of jobs.
func (c *Client) List(ctx context.Context, o ListOptions) (*Page, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("kind", string(o.Kind))
	set("status", string(o.Status))
	set("name", o.Name)
	set("cursor", o.Cursor)
	if o.PageNumber > 0 {
		q.Set("page_number", strconv.Itoa(o.PageNumber))
	}
	if o.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(o.PageSize))
	}
	return c.page(ctx, "/jobs", q)
}

// Executions returns one page of the executions of a periodic policy, or
// of the sub-jobs of a job, newest first.
func (c *Client) Executions(ctx context.Context, id string, pageNumber, pageSize int, nonDeadOnly bool) (*Page, error) {
	q := url.Values{}
	if pageNumber > 0 {
		q.Set("page_number", strconv.Itoa(pageNumber))
	}
	if pageSize > 0 {
		q.Set("page_size", strconv.Itoa(pageSize))
	}
	if nonDeadOnly {
		q.Set("non_dead_only", "true")
	}
	return c.page(ctx, "/jobs/"+url.PathEscape(id)+"/executions", q)
}

func (c *Client) page(ctx context.Context, path string, q url.Values) (*Page, error) {
	var list []Envelope
	h, err := c.do(ctx, http.MethodGet, path, q, nil, &list)
	if err != nil {
		return nil, err
	}
	p := &Page{Total: -1, NextCursor: h.Get("Next-Cursor"), Jobs: make([]*Stats, 0, len(list))}
	if v := h.Get("Total-Count"); v != "" {
		if p.Total, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("client: GET %s: Total-Count %q is not a number", path, v)
		}
	}
	for _, e := range list {
		if e.Job != nil {
			p.Jobs = append(p.Jobs, e.Job)
		}
	}
	return p, nil
}

// WorkerPools lists the worker pools (GET /api/v1/stats, which needs no
// secret).
func (c *Client) WorkerPools(ctx context.Context) ([]*WorkerPool, error) {
	var s PoolStats
	if _, err := c.do(ctx, http.MethodGet, "/stats", nil, nil, &s); err != nil {
		return nil, err
	}
	return s.Pools, nil
}

// Config returns the service's Redis pool configuration.
func (c *Client) Config(ctx context.Context) (*PoolConfig, error) {
	var pc PoolConfig
	if _, err := c.do(ctx, http.MethodGet, "/config", nil, nil, &pc); err != nil {
		return nil, err
	}
	return &pc, nil
}

// Ended holds once a job's status is final.
func Ended(s *Stats) bool { return s.Status.Final() }

// Wait reads a job until until holds (or ctx ends) and returns its last
// stats. Bound ctx: a job may never get there.
func (c *Client) Wait(ctx context.Context, id string, until func(*Stats) bool) (*Stats, error) {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		st, err := c.Get(ctx, id)
		if err != nil {
			return st, err
		}
		if until(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("client: wait for job %s (last status %s): %w", id, st.Status, ctx.Err())
		case <-t.C:
		}
	}
}
