package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/berth-dev/berth/host/internal/job"
)

// Backend does what the API is asked to do. Errors from the job package
// (job.ErrNotFound, *job.BadRequestError, job.ErrNotPeriodic,
// *job.ConflictError, *job.StatusMismatchError, job.ErrUnknownAction),
// wrapped or not, become their own HTTP statuses; any other error is a 500.
type Backend interface {
	// Submit runs or schedules a job; req has passed job.Check.
	Submit(ctx context.Context, req *job.RequestJob) (*job.Stats, error)
	// Get returns the stats of a job or of a periodic execution.
	Get(ctx context.Context, id string) (*job.Stats, error)
	// Action applies stop, cancel or retry to a job.
	Action(ctx context.Context, id string, action job.Action) error
	// Log returns the text of a job's log.
	Log(ctx context.Context, id string) ([]byte, error)
	// List returns a page of all jobs.
	List(ctx context.Context, q job.Query) (*job.Page, error)
	// Executions returns a page of the executions of a periodic job.
	Executions(ctx context.Context, id string, q job.Query) (*job.Page, error)
	// WorkerPools returns every known worker pool, healthy or not.
	WorkerPools(ctx context.Context) ([]*job.WorkerPool, error)
	// Config returns what GET /api/v1/config shows.
	Config() job.PoolConfig
}

// Options configures the handler that New returns.
type Options struct {
	// Secret is CORE_SECRET, the secret callers send as
	// "Authorization: Harbor-Secret <secret>". Empty refuses every call
	// that needs authentication.
	Secret string
	// Logger receives one debug entry per request and the errors worth an
	// operator's eye. Nil discards them.
	Logger hclog.Logger
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	// Zero or less means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxParameterBytes bounds a submission's parameters as JSON; larger
	// ones are a 400. Zero or less means DefaultMaxParameterBytes.
	MaxParameterBytes int64
	// MaxConcurrentListings bounds the listing requests served at once
	// (each holds a page of stats in memory); more wait for a turn while
	// their caller waits. Zero or less means DefaultMaxConcurrentListings.
	MaxConcurrentListings int
	// Now is the clock of the client-error log's rate (time.Now if nil).
	Now func() time.Time
	// Stream configures GET /api/v1/events, the live stream of this
	// host's job events (stream.go).
	Stream StreamOptions
	// Dashboard, if set, serves everything under /dashboard/, without
	// authentication: it serves static files only, and every data call
	// they make goes through the API with the secret.
	Dashboard http.Handler
	// Plugins, when set, reports this host's plugins for GET /stats (a
	// Berth extension field, "plugins").
	Plugins func() any
}

// Defaults of Options.
const (
	DefaultMaxParameterBytes     = 64 << 10
	DefaultMaxConcurrentListings = 4
)

// DefaultMaxBodyBytes is the body size limit when Options.MaxBodyBytes is
// not set.
const DefaultMaxBodyBytes = 1 << 20

// Path prefix of every route, and the one route without authentication.
const (
	prefix    = "/api/v1"
	statsPath = prefix + "/stats"
	// dashboardPath is where Options.Dashboard is mounted.
	dashboardPath = "/dashboard"
)

// New returns the handler of the REST API, which serves /api/v1 from b.
func New(b Backend, opts Options) http.Handler {
	s := &server{
		backend:    b,
		log:        opts.Logger,
		maxBody:    opts.MaxBodyBytes,
		maxParams:  opts.MaxParameterBytes,
		plugins:    opts.Plugins,
		clientErrs: newRateLog(clientErrorsPerMinute, time.Minute, opts.Now),
		stream:     newStreamer(opts.Stream),
		dashboard:  opts.Dashboard,
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxParams <= 0 {
		s.maxParams = DefaultMaxParameterBytes
	}
	if opts.MaxConcurrentListings <= 0 {
		opts.MaxConcurrentListings = DefaultMaxConcurrentListings
	}
	s.listings = make(chan struct{}, opts.MaxConcurrentListings)
	if opts.Secret != "" {
		sum := sha256.Sum256([]byte(opts.Secret))
		s.secretSum = sum[:]
	}

	r := httprouter.New()
	// A redirect would move a caller to a route it did not ask for (and
	// /api/v1/stats/ to the one route without authentication); OPTIONS
	// gets the JSON 405 like any other unsupported method.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(s.notFound)
	r.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
	for _, e := range endpoints {
		r.Handle(e.method, e.path, s.route(e))
	}
	s.router = r
	return s
}

// server is the handler that New returns.
type server struct {
	backend   Backend
	log       hclog.Logger
	maxBody   int64
	maxParams int64
	// listings holds a token per listing being served.
	listings  chan struct{}
	secretSum []byte // SHA-256 of the secret; nil when no secret is set
	router    *httprouter.Router
	// clientErrs logs refused requests at a bounded rate.
	clientErrs *rateLog
	plugins    func() any
	stream     *streamer    // nil without Options.Stream.Bus
	dashboard  http.Handler // nil without Options.Dashboard
}

// exchange is one request being answered: the response writer, what the
// request is about (for the error mapping and the logs) and what was sent.
type exchange struct {
	http.ResponseWriter
	req    *http.Request
	ep     *endpoint  // nil until a route is matched
	id     string     // the job ID of the path, once checked
	action job.Action // the requested action, once decoded
	body   []byte     // the request body, once read
	status int        // sent status; 0 while nothing was sent
}

func (x *exchange) WriteHeader(status int) {
	if x.status == 0 {
		x.status = status
	}
	x.ResponseWriter.WriteHeader(status)
}

func (x *exchange) Write(p []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// ServeHTTP authenticates, routes and logs every request, and turns a
// panic into a 500.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Route on the escaped path, so that an encoded "/" inside an ID
	// stays inside its segment; handlers unescape the parameters.
	u := *r.URL
	u.Path, u.RawPath = r.URL.EscapedPath(), ""
	r = r.WithContext(r.Context()) // a shallow copy, to change its URL only
	r.URL = &u

	x := &exchange{ResponseWriter: w, req: r}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic while serving a request", "method", r.Method, "path", u.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.fail(x, &panicError{value: v})
		}
		s.log.Debug("request", "method", r.Method, "path", u.Path, "status", x.status,
			"duration", time.Since(start))
	}()

	if s.dashboard != nil && (u.Path == dashboardPath || strings.HasPrefix(u.Path, dashboardPath+"/")) {
		s.dashboard.ServeHTTP(x, r)
		return
	}
	if !((r.Method == http.MethodGet || r.Method == http.MethodHead) && u.Path == statsPath) {
		if err := s.authenticate(r); err != nil {
			s.fail(x, err)
			return
		}
	}
	s.router.ServeHTTP(x, r)
}

// authenticate checks the Harbor-Secret of r. Its errors never hold the
// secret that was sent, and never tell a caller how the service is set
// up (a service without a secret refuses like one with another secret;
// its log says why, at start).
func (s *server) authenticate(r *http.Request) error {
	const scheme = "Harbor-Secret"
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return &authError{reason: `header "Authorization" is missing: send "Authorization: Harbor-Secret <secret>"`}
	}
	rest, ok := strings.CutPrefix(h, scheme)
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return &authError{reason: `header "Authorization" does not use the Harbor-Secret scheme: ` +
			`send "Authorization: Harbor-Secret <secret>", with a space after the scheme`}
	}
	secret := strings.TrimSpace(rest)
	if secret == "" {
		return &authError{reason: `header "Authorization" has an empty secret: send "Authorization: Harbor-Secret <secret>"`}
	}
	// Hashing first makes the comparison's time independent of the length
	// of either secret, which ConstantTimeCompare alone does not.
	sum := sha256.Sum256([]byte(secret))
	if s.secretSum == nil || subtle.ConstantTimeCompare(sum[:], s.secretSum) != 1 {
		return &authError{reason: `the secret in header "Authorization" does not match the service's CORE_SECRET: ` +
			`send core's secret`}
	}
	return nil
}

// route returns the httprouter handle of e: it records the endpoint on the
// exchange and answers the error e's handler returns.
func (s *server) route(e *endpoint) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		x := w.(*exchange)
		x.ep = e
		if err := e.handle(s, x, ps); err != nil {
			s.fail(x, err)
		}
	}
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w.(*exchange), &routeError{method: r.Method, path: r.URL.Path})
}

func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	// httprouter always lists OPTIONS, which this API does not answer.
	var allow []string
	for _, m := range strings.Split(w.Header().Get("Allow"), ", ") {
		if m != http.MethodOptions && m != "" {
			allow = append(allow, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	s.fail(w.(*exchange), &methodError{method: r.Method, path: r.URL.Path, allow: strings.Join(allow, ", ")})
}

// fail answers err, mapped by classify, and logs it if an operator should
// know.
func (s *server) fail(x *exchange, err error) {
	rep := classify(x, err)
	switch {
	case rep.clientGone:
		s.log.Debug("client went away before the answer", "method", x.req.Method,
			"path", x.req.URL.Path, "error", err)
	case rep.status >= http.StatusInternalServerError && rep.code != codeUnknownAction && rep.status != http.StatusServiceUnavailable:
		if _, isPanic := err.(*panicError); !isPanic { // logged with its stack already
			s.log.Error("request failed", "method", x.req.Method, "path", x.req.URL.Path,
				"status", rep.status, "code", rep.code, "error", err)
		}
	default:
		// The caller's mistake: worth a line for whoever debugs a client,
		// but a flood of them must not drown the log.
		s.clientErrs.log(s.log, x.req.Method, x.req.URL.Path, rep)
	}
	if x.status != 0 {
		return // too late to change the answer
	}
	body, mErr := marshal(errorBody{Code: rep.code, Message: messages[rep.code], Details: rep.details})
	if mErr != nil { // cannot happen: the body is three plain fields
		http.Error(x, "internal error", http.StatusInternalServerError)
		return
	}
	send(x, rep.status, contentJSON, body)
}
