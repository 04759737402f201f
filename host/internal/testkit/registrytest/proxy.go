package registrytest

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"regexp"
	"slices"
	"strings"
)

// Request is one request that reached the registry through Host.
type Request struct {
	Method string // GET, HEAD, POST, PATCH, PUT, DELETE
	Path   string // URL path, without the query: /v2/<repo>/blobs/uploads/<uuid>
	Status int    // the registry's status code; 502 if it could not be reached
}

// String returns "PATCH /v2/a/blobs/uploads/<uuid> 202".
func (q Request) String() string { return fmt.Sprintf("%s %s %d", q.Method, q.Path, q.Status) }

// newProxy returns the reverse proxy in front of the registry. It keeps the
// client's Host header, so that the upload locations the registry answers
// point back at the proxy, and records each request when the registry's
// answer arrives, before the client sees it: a client that has its answer
// finds its request in Requests.
func (r *Registry) newProxy() http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// While the registry is stopped the host is "": the transport
			// refuses the request and ErrorHandler answers 502.
			host, _ := r.backendHost()
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", host
			pr.Out.Host = pr.In.Host
		},
		Transport: r.proxyTr,
		ModifyResponse: func(resp *http.Response) error {
			r.record(resp.Request, resp.StatusCode)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			r.record(req, http.StatusBadGateway)
			http.Error(w, "registrytest: "+err.Error(), http.StatusBadGateway)
		},
	}
}

func (r *Registry) record(req *http.Request, status int) {
	r.requestsMu.Lock()
	defer r.requestsMu.Unlock()
	r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, Status: status})
}

// Requests returns the requests that reached the registry through Host since
// Start or Reset, in order. The package's own helpers (Push, Validate, ...)
// bypass the proxy: what is listed was sent by the code under test.
func (r *Registry) Requests() []Request {
	r.requestsMu.Lock()
	defer r.requestsMu.Unlock()
	return slices.Clone(r.requests)
}

// Count returns how many Requests have the method ("" for any, case
// ignored) and a path that pattern, a regular expression, matches anywhere
// ("" for any). A plain substring is a pattern: Count("PATCH",
// "/blobs/uploads/") counts blob upload chunks. It panics on a bad pattern.
func (r *Registry) Count(method, pattern string) int {
	re := regexp.MustCompile(pattern)
	n := 0
	for _, q := range r.Requests() {
		if (method == "" || strings.EqualFold(method, q.Method)) && re.MatchString(q.Path) {
			n++
		}
	}
	return n
}

// Writes returns the Requests that may change the registry (POST, PUT,
// PATCH, DELETE): a rerun that copied nothing has none.
func (r *Registry) Writes() []Request {
	var out []Request
	for _, q := range r.Requests() {
		switch q.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			out = append(out, q)
		}
	}
	return out
}

// Reset forgets the requests recorded so far.
func (r *Registry) Reset() {
	r.requestsMu.Lock()
	defer r.requestsMu.Unlock()
	r.requests = nil
}
