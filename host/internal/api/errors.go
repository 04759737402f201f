package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/berth-dev/berth/host/client"
	"github.com/berth-dev/berth/host/internal/job"
)

// Harbor's error codes (src/jobservice/errs in Harbor 2.x).
const (
	codeReadBody         = 10000
	codeHandleJSON       = 10001
	codeMissingBackend   = 10002
	codeLaunchJob        = 10003
	codeCheckStats       = 10004
	codeGetJob           = 10005
	codeStopJob          = 10006
	codeRetryJob         = 10007
	codeUnknownAction    = 10008
	codeGetJobLog        = 10009
	codeNotFound         = 10010
	codeUnauthorized     = 10011
	codeConflict         = 10012
	codeBadRequest       = 10013
	codeGetJobs          = 10014
	codeGetExecutions    = 10015
	codeStatusMismatch   = 10016
	statusClientGone     = 499 // not sent to anyone: the client is gone
	maxEchoedInputLength = 80
)

// messages are Harbor's fixed message texts of its codes.
var messages = map[int]string{
	codeReadBody:       "read request body failed with error",
	codeHandleJSON:     "handle json data failed with error",
	codeMissingBackend: "missing backend controller to handle the requests",
	codeLaunchJob:      "launch job failed with error",
	codeCheckStats:     "check stats of server failed with error",
	codeGetJob:         "get job stats failed with error",
	codeStopJob:        "stop job failed with error",
	codeRetryJob:       "retry job failed with error",
	codeUnknownAction:  "unknown job action name",
	codeGetJobLog:      "failed to get the job log",
	codeNotFound:       "object is not found",
	codeUnauthorized:   "unauthorized",
	codeConflict:       "conflict",
	codeBadRequest:     "bad request",
	codeGetJobs:        "failed to get scheduled jobs",
	codeGetExecutions:  "failed to get periodic executions",
	codeStatusMismatch: "mismatch job status",
}

// errorBody is every error answer (the client package reads it).
type errorBody = client.ErrorBody

// reply is how an error is answered.
type reply struct {
	status  int
	code    int
	details string
	// clientGone: the caller left; nobody reads the answer and nothing
	// needs an operator.
	clientGone bool
}

// classify is the one place where errors become HTTP statuses and Harbor
// codes: the API's own errors (below), then the job package's errors, then
// everything else as a 500 with the endpoint's code.
func classify(x *exchange, err error) reply {
	var (
		authErr     *authError
		bodyErr     *bodyError
		jsonErr     *jsonError
		routeErr    *routeError
		methodErr   *methodError
		poolErr     *noHealthyPoolError
		panicErr    *panicError
		badReq      *job.BadRequestError
		conflict    *job.ConflictError
		mismatch    *job.StatusMismatchError
		maxBytesErr *http.MaxBytesError
		marshalErr  marshalError
		streamsErr  *streamLimitError
	)
	switch {
	case errors.As(err, &authErr):
		return reply{status: http.StatusUnauthorized, code: codeUnauthorized, details: authErr.reason}
	case errors.As(err, &bodyErr):
		if bodyErr.tooLarge || errors.As(bodyErr.err, &maxBytesErr) {
			return reply{status: http.StatusRequestEntityTooLarge, code: codeReadBody, details: fmt.Sprintf(
				"the request body is larger than the service's limit of %d bytes", bodyErr.limit)}
		}
		if gone(x) {
			return reply{status: statusClientGone, code: codeReadBody, clientGone: true}
		}
		return reply{status: http.StatusBadRequest, code: codeReadBody, details: bodyErr.Error()}
	case errors.As(err, &jsonErr):
		return reply{status: http.StatusBadRequest, code: codeHandleJSON, details: jsonErr.Error()}
	case errors.As(err, &routeErr):
		return reply{status: http.StatusNotFound, code: codeNotFound, details: routeErr.Error()}
	case errors.As(err, &methodErr):
		return reply{status: http.StatusMethodNotAllowed, code: codeBadRequest, details: methodErr.Error()}
	case errors.As(err, &streamsErr):
		// Too many live streams: the service is fine, try again later.
		return reply{status: http.StatusServiceUnavailable, code: failureCode(x), details: streamsErr.Error()}
	case errors.As(err, &poolErr):
		return reply{status: http.StatusInternalServerError, code: codeCheckStats, details: poolErr.Error()}
	case errors.As(err, &panicErr):
		return reply{status: http.StatusInternalServerError, code: failureCode(x), details: panicErr.Error()}
	case errors.As(err, &marshalErr):
		return reply{status: http.StatusInternalServerError, code: codeHandleJSON, details: err.Error()}

	case (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && gone(x):
		return reply{status: statusClientGone, code: failureCode(x), clientGone: true}
	case errors.Is(err, job.ErrNotFound):
		details := x.id
		if details == "" {
			details = err.Error()
		}
		return reply{status: http.StatusNotFound, code: codeNotFound, details: details}
	case errors.As(err, &badReq):
		return reply{status: http.StatusBadRequest, code: codeBadRequest, details: badReq.Reason}
	case errors.Is(err, job.ErrNotPeriodic):
		return reply{status: http.StatusBadRequest, code: codeBadRequest, details: fmt.Sprintf(
			"job %s has no executions: only a periodic job or a job that launched sub-jobs has them; GET /api/v1/jobs/%s shows the job itself",
			x.id, x.id)}
	case errors.As(err, &conflict):
		return reply{status: http.StatusConflict, code: codeConflict, details: conflict.Error() +
			"; GET /api/v1/jobs/" + conflict.ExistingID + " shows it"}
	case errors.As(err, &mismatch):
		return reply{status: http.StatusConflict, code: codeStatusMismatch, details: mismatchDetails(mismatch)}
	case errors.Is(err, job.ErrUnknownAction):
		return reply{status: http.StatusNotImplemented, code: codeUnknownAction, details: fmt.Sprintf(
			"command: %s; the known actions are stop, cancel and retry", clip(string(x.action)))}
	}
	if x.ep != nil && x.ep.path == statsPath {
		// Anyone may ask /stats: the error (a Redis address, say) is for
		// the service log only.
		return reply{status: http.StatusInternalServerError, code: failureCode(x),
			details: "the service cannot read the state of its worker pools; the service log has the details"}
	}
	return reply{status: http.StatusInternalServerError, code: failureCode(x), details: err.Error()}
}

// failureCode is the code of the endpoint's generic failure.
func failureCode(x *exchange) int {
	if x.ep == nil {
		return codeMissingBackend
	}
	if x.ep.code == codeStopJob && x.action == job.ActionRetry {
		return codeRetryJob
	}
	return x.ep.code
}

// gone tells whether the caller has left (or its deadline passed).
func gone(x *exchange) bool { return x.req.Context().Err() != nil }

// mismatchDetails explains a status mismatch. For a stop of a job that has
// ended, it also carries the sentence Harbor's core recognises (in its job
// client, as StatusBehindError) to learn the job's final status.
func mismatchDetails(e *job.StatusMismatchError) string {
	s := e.Error()
	switch {
	case e.Action == job.ActionRetry:
		s += "; retry needs " + string(job.Error)
	case e.Action == job.ActionStop && e.Status.Final():
		s += fmt.Sprintf(" (mismatch job status for stopping job: %s, job status %s is behind Running)", e.ID, e.Status)
	}
	return s
}

// authError is a refused authentication.
type authError struct{ reason string }

func (e *authError) Error() string { return "unauthorized: " + e.reason }

// bodyError is a request body that could not be read.
type bodyError struct {
	err      error
	limit    int64
	tooLarge bool // known from Content-Length, before reading
}

func (e *bodyError) Error() string {
	if e.tooLarge {
		return fmt.Sprintf("the request body is larger than %d bytes", e.limit)
	}
	return "reading the request body: " + e.err.Error()
}

func (e *bodyError) Unwrap() error { return e.err }

// jsonError is a request body that is not the JSON the endpoint takes.
type jsonError struct {
	err     error
	empty   bool
	example string // a body the endpoint takes
}

func (e *jsonError) Error() string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case e.empty:
		return "the request body is empty: send a JSON object such as " + e.example
	case errors.As(e.err, &syn):
		return fmt.Sprintf("the request body is not valid JSON: %s (at byte %d); send a JSON object such as %s",
			syn.Error(), syn.Offset, e.example)
	case errors.As(e.err, &typ):
		where := "the request body"
		if typ.Field != "" {
			where = fmt.Sprintf("field %q", typ.Field)
		}
		return fmt.Sprintf("%s is a JSON %s, but it must be %s (near byte %d)",
			where, typ.Value, describeType(typ.Type), typ.Offset)
	}
	return "the request body is not the JSON expected: " + e.err.Error() + "; send a JSON object such as " + e.example
}

func (e *jsonError) Unwrap() error { return e.err }

// describeType names a Go type for someone who writes JSON.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number from 0 up"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a " + t.String()
}

// routeError is a path that no route serves.
type routeError struct{ method, path string }

func (e *routeError) Error() string {
	return fmt.Sprintf("no route serves %s %s: the API's routes are /api/v1/jobs, /api/v1/jobs/<id>, "+
		"/api/v1/jobs/<id>/log, /api/v1/jobs/<id>/executions, /api/v1/stats, /api/v1/config and /api/v1/events",
		e.method, clip(e.path))
}

// methodError is a route asked with a method it does not take.
type methodError struct{ method, path, allow string }

func (e *methodError) Error() string {
	return fmt.Sprintf("method %s is not allowed on %s: use %s", clip(e.method), clip(e.path), e.allow)
}

// noHealthyPoolError is a GET /api/v1/stats that found no healthy pool.
type noHealthyPoolError struct{ known int }

func (e *noHealthyPoolError) Error() string {
	if e.known == 0 {
		return "no worker pool is known: no host has sent a heartbeat; check that the hosts run and reach Redis"
	}
	return fmt.Sprintf("none of the %d known worker pools is healthy: their heartbeats are too old; "+
		"check that the hosts run and reach Redis", e.known)
}

// panicError is a handler that panicked.
type panicError struct{ value any }

func (e *panicError) Error() string {
	return "the service failed while handling the request; the service log has the details"
}

// marshalError is an answer that could not be encoded.
type marshalError struct{ err error }

func (e marshalError) Error() string { return "encoding the answer: " + e.err.Error() }

func (e marshalError) Unwrap() error { return e.err }

// clip shortens s, an input echoed in a message, to a readable length.
func clip(s string) string {
	if len(s) <= maxEchoedInputLength {
		return s
	}
	return s[:maxEchoedInputLength] + "..."
}

// isEmpty tells whether body holds nothing but white space.
func isEmpty(body []byte) bool { return len(bytes.TrimSpace(body)) == 0 }
