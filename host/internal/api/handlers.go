package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/berth-dev/berth/host/internal/job"
)

// endpoint is one route: its method and path, the Harbor code of its
// generic failures, and its handler, which answers success itself and
// returns errors for server.fail to answer.
type endpoint struct {
	method, path string
	code         int
	handle       func(s *server, x *exchange, ps httprouter.Params) error
}

var endpoints = []*endpoint{
	{http.MethodPost, prefix + "/jobs", codeLaunchJob, (*server).submit},
	{http.MethodGet, prefix + "/jobs", codeGetJobs, (*server).list},
	{http.MethodGet, prefix + "/jobs/:id", codeGetJob, (*server).get},
	{http.MethodPost, prefix + "/jobs/:id", codeStopJob, (*server).act},
	{http.MethodGet, prefix + "/jobs/:id/log", codeGetJobLog, (*server).jobLog},
	{http.MethodGet, prefix + "/jobs/:id/executions", codeGetExecutions, (*server).executions},
	{http.MethodGet, statsPath, codeCheckStats, (*server).stats},
	{http.MethodHead, statsPath, codeCheckStats, (*server).stats}, // a load balancer's probe
	{http.MethodGet, prefix + "/config", codeHandleJSON, (*server).config},
	{http.MethodGet, eventsPath, codeMissingBackend, (*server).events}, // Berth's, stream.go
}

// Examples of accepted bodies, for the messages about bad ones.
const (
	exampleSubmit = `{"job":{"name":"DEMO","parameters":{},"metadata":{"kind":"Generic"}}}`
	exampleAction = `{"action":"stop"}`
)

// Content types of the answers.
const (
	contentJSON = "application/json"
	contentText = "text/plain; charset=utf-8"
)

// POST /api/v1/jobs
func (s *server) submit(x *exchange, _ httprouter.Params) error {
	var req job.Request
	if err := s.decode(x, &req, exampleSubmit); err != nil {
		return err
	}
	if err := job.Check(req.Job); err != nil {
		return err
	}
	if err := s.checkParameterSize(x); err != nil {
		return err
	}
	st, err := s.backend.Submit(x.req.Context(), req.Job)
	if err != nil {
		return err
	}
	if st == nil {
		return errors.New("the backend accepted the job but returned no stats")
	}
	return sendJSON(x, http.StatusAccepted, job.Envelope{Job: job.RedactStats(st)})
}

// checkParameterSize refuses parameters larger than s.maxParams as JSON.
// A body no larger than that cannot hold such parameters, so only a large
// one is read again.
func (s *server) checkParameterSize(x *exchange) error {
	if int64(len(x.body)) <= s.maxParams {
		return nil
	}
	var raw struct {
		Job *struct {
			Parameters json.RawMessage `json:"parameters"`
		} `json:"job"`
	}
	if err := json.Unmarshal(x.body, &raw); err != nil || raw.Job == nil {
		return nil // decoded once already: cannot happen
	}
	if n := int64(len(raw.Job.Parameters)); n > s.maxParams {
		return job.BadRequest(fmt.Sprintf(
			`"job.parameters" is %d bytes of JSON: at most %d are taken (the service's api.max_parameters_bytes); pass large data by reference, such as a URL`,
			n, s.maxParams))
	}
	return nil
}

// listing waits for a turn to serve a listing; release gives it back.
func (s *server) listing(x *exchange) (release func(), err error) {
	select {
	case s.listings <- struct{}{}:
		return func() { <-s.listings }, nil
	case <-x.req.Context().Done():
		return nil, x.req.Context().Err()
	}
}

// GET /api/v1/jobs
func (s *server) list(x *exchange, _ httprouter.Params) error {
	v := x.req.URL.Query()
	q, err := pagingQuery(v)
	if err != nil {
		return err
	}
	if k := v.Get("kind"); k != "" {
		if !job.Kind(k).Valid() {
			return job.BadRequest(fmt.Sprintf(
				`query parameter "kind" is %q: it must be Generic, Scheduled or Periodic, or absent for every kind`, clip(k)))
		}
		q.Kind = job.Kind(k)
	}
	if st := v.Get("status"); st != "" {
		if job.Status(st).Validate() != nil {
			return job.BadRequest(fmt.Sprintf(
				`query parameter "status" is %q: it must be one of Pending, Scheduled, Running, Stopped, Error, Success`, clip(st)))
		}
		q.Status = job.Status(st)
	}
	if n := v.Get("name"); n != "" {
		q.Name = n
	}
	if (q.Status != "" || q.Name != "") && (q.Kind == job.KindScheduled || q.Kind == job.Periodic) {
		return job.BadRequest(fmt.Sprintf(
			`query parameters "status" and "name" cannot go with kind=%s, which lists the %s: leave kind out or use kind=Generic`,
			q.Kind, map[job.Kind]string{job.KindScheduled: "jobs waiting for their run time", job.Periodic: "active periodic policies"}[q.Kind]))
	}
	if c := v.Get("cursor"); c != "" {
		if !isCursor(c) {
			return job.BadRequest(fmt.Sprintf(
				`query parameter "cursor" is %q: it must be the digits of the previous page's Next-Cursor header, `+
					`or absent to start from the beginning`, clip(c)))
		}
		q.Cursor = c
	}
	release, err := s.listing(x)
	if err != nil {
		return err
	}
	defer release()
	page, err := s.backend.List(x.req.Context(), q)
	if err != nil {
		return err
	}
	return sendPage(x, page, true)
}

// GET /api/v1/jobs/:id
func (s *server) get(x *exchange, ps httprouter.Params) error {
	if err := x.checkID(ps); err != nil {
		return err
	}
	st, err := s.backend.Get(x.req.Context(), x.id)
	if err != nil {
		return err
	}
	if st == nil {
		return errors.New("the backend returned no stats for the job")
	}
	return sendJSON(x, http.StatusOK, job.Envelope{Job: job.RedactStats(st)})
}

// POST /api/v1/jobs/:id
func (s *server) act(x *exchange, ps httprouter.Params) error {
	if err := x.checkID(ps); err != nil {
		return err
	}
	var req job.ActionRequest
	if err := s.decode(x, &req, exampleAction); err != nil {
		return err
	}
	x.action = req.Action
	switch req.Action {
	case job.ActionStop, job.ActionCancel, job.ActionRetry:
	case "":
		return job.BadRequest(`field "action" is missing or empty: send {"action":"stop"}, "cancel" or "retry"`)
	default:
		return job.ErrUnknownAction
	}
	if err := s.backend.Action(x.req.Context(), x.id, req.Action); err != nil {
		return err
	}
	x.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /api/v1/jobs/:id/log
func (s *server) jobLog(x *exchange, ps httprouter.Params) error {
	if err := x.checkID(ps); err != nil {
		return err
	}
	text, err := s.backend.Log(x.req.Context(), x.id)
	if err != nil {
		return err
	}
	send(x, http.StatusOK, contentText, text)
	return nil
}

// GET /api/v1/jobs/:id/executions
func (s *server) executions(x *exchange, ps httprouter.Params) error {
	if err := x.checkID(ps); err != nil {
		return err
	}
	v := x.req.URL.Query()
	q, err := pagingQuery(v)
	if err != nil {
		return err
	}
	if n := v.Get("non_dead_only"); n != "" {
		b, err := strconv.ParseBool(n)
		if err != nil {
			return job.BadRequest(fmt.Sprintf(
				`query parameter "non_dead_only" is %q: it must be true or false (or 1 or 0)`, clip(n)))
		}
		q.NonDeadOnly = b
	}
	release, err := s.listing(x)
	if err != nil {
		return err
	}
	defer release()
	page, err := s.backend.Executions(x.req.Context(), x.id, q)
	if err != nil {
		return err
	}
	return sendPage(x, page, false)
}

// GET /api/v1/stats
func (s *server) stats(x *exchange, _ httprouter.Params) error {
	pools, err := s.backend.WorkerPools(x.req.Context())
	if err != nil {
		return err
	}
	healthy := false
	for _, p := range pools {
		if p != nil && p.Status == job.PoolHealthy {
			healthy = true
			break
		}
	}
	if !healthy {
		return &noHealthyPoolError{known: len(pools)}
	}
	if s.plugins == nil {
		return sendJSON(x, http.StatusOK, job.PoolStats{Pools: pools})
	}
	// Berth's extension: the state of this host's plugins (a hung one is
	// "unresponsive"), beside Harbor's pools.
	return sendJSON(x, http.StatusOK, struct {
		job.PoolStats
		Plugins any `json:"plugins"`
	}{job.PoolStats{Pools: pools}, s.plugins()})
}

// GET /api/v1/config
func (s *server) config(x *exchange, _ httprouter.Params) error {
	return sendJSON(x, http.StatusOK, s.backend.Config())
}

// checkID takes the job ID of the path and checks it, before anything
// else sees it.
func (x *exchange) checkID(ps httprouter.Params) error {
	raw := ps.ByName("id")
	id, err := url.PathUnescape(raw)
	if err != nil || !job.ValidID(id) {
		if err != nil {
			id = raw
		}
		return job.BadRequest(fmt.Sprintf(
			"%q is not a job ID: 24 lowercase hex characters, or <id>@<unix time> for a periodic execution", clip(id)))
	}
	x.id = id
	return nil
}

// decode reads the body, at most s.maxBody bytes, into v.
func (s *server) decode(x *exchange, v any, example string) error {
	r := x.req
	if r.ContentLength > s.maxBody {
		// Refuse without reading it, and do not keep a connection whose
		// input is an unread body.
		x.Header().Set("Connection", "close")
		return &bodyError{limit: s.maxBody, tooLarge: true}
	}
	// The connection's own writer, so that net/http closes the connection
	// after the answer when the limit is hit.
	body, err := io.ReadAll(http.MaxBytesReader(x.ResponseWriter, r.Body, s.maxBody))
	if err != nil {
		return &bodyError{err: err, limit: s.maxBody}
	}
	x.body = body
	if isEmpty(body) {
		return &jsonError{empty: true, example: example}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &jsonError{err: err, example: example}
	}
	return nil
}

// pagingQuery reads page_number and page_size.
func pagingQuery(v url.Values) (job.Query, error) {
	q := job.Query{PageNumber: 1, PageSize: job.DefaultPageSize}
	if s := v.Get("page_number"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageNumber {
			return q, job.BadRequest(fmt.Sprintf(
				`query parameter "page_number" is %q: it must be a whole number from 1 to %d (default 1)`,
				clip(s), maxPageNumber))
		}
		q.PageNumber = n
	}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > job.MaxPageSize {
			return q, job.BadRequest(fmt.Sprintf(
				`query parameter "page_size" is %q: it must be a whole number from 1 to %d (default %d)`,
				clip(s), job.MaxPageSize, job.DefaultPageSize))
		}
		q.PageSize = n
	}
	return q, nil
}

// maxPageNumber keeps page offsets far from overflowing.
const maxPageNumber = 1<<31 - 1

// isCursor tells whether c is a cursor: digits, as Next-Cursor sends them.
func isCursor(c string) bool {
	if len(c) > 20 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return false
		}
	}
	return true
}

// sendPage answers a listing: a JSON array of {"job":{...}} (never null),
// with the headers Total-Count (unless the total is unknown, negative) and,
// if withCursor and the page has one, Next-Cursor.
func sendPage(x *exchange, page *job.Page, withCursor bool) error {
	if page == nil {
		page = &job.Page{}
	}
	// Up to streamAbove, the answer goes in one piece with its length;
	// past it, each job is encoded and written in turn, so that the
	// answer never holds a second copy of a large page in memory.
	items := make([][]byte, 0, len(page.Jobs))
	size, rest := 2, len(page.Jobs) // rest: the first job not encoded yet
	for i, st := range page.Jobs {
		if size > streamAbove {
			rest = i
			break // encoded as it is written, below
		}
		if st == nil {
			continue
		}
		b, err := marshal(job.Envelope{Job: job.RedactStats(st)})
		if err != nil {
			return err
		}
		items = append(items, b)
		size += len(b) + 1
	}
	h := x.Header()
	if page.Total >= 0 {
		h.Set("Total-Count", strconv.FormatInt(page.Total, 10))
	}
	if withCursor && page.NextCursor != "" {
		h.Set("Next-Cursor", page.NextCursor)
	}
	if size <= streamAbove {
		body := make([]byte, 0, size)
		body = append(body, '[')
		for i, b := range items {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, b...)
		}
		send(x, http.StatusOK, contentJSON, append(body, ']'))
		return nil
	}
	// A large page goes out as it is encoded (chunked).
	h.Set("Content-Type", contentJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	x.WriteHeader(http.StatusOK)
	n := 0
	write := func(b []byte) {
		if n > 0 {
			_, _ = x.Write([]byte{','})
		} else {
			_, _ = x.Write([]byte{'['})
		}
		_, _ = x.Write(b)
		n++
	}
	for _, b := range items {
		write(b)
	}
	for _, st := range page.Jobs[rest:] {
		if st == nil {
			continue
		}
		b, err := marshal(job.Envelope{Job: job.RedactStats(st)})
		if err != nil {
			// Too late for an error answer: end the array so that the
			// client can tell what it got, and log it.
			break
		}
		write(b)
	}
	if n == 0 {
		_, _ = x.Write([]byte{'['})
	}
	_, _ = x.Write([]byte{']'})
	return nil
}

// streamAbove is the size of a listing's answer past which it is written
// as it is encoded rather than in one piece with a Content-Length.
const streamAbove = 1 << 20

// sendJSON answers v as JSON.
func sendJSON(x *exchange, status int, v any) error {
	body, err := marshal(v)
	if err != nil {
		return err
	}
	send(x, status, contentJSON, body)
	return nil
}

// marshal encodes v as JSON without a trailing newline. It leaves <, >
// and & as they are: the answers are typed application/json and nosniff,
// and the details of errors stay readable where core prints them.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, marshalError{err: err}
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// send writes an answer. A write error means the client is gone: there is
// no one left to tell.
func send(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
