package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/plugins/scan/adapter/osv"
	"github.com/berth-dev/berth/plugins/scan/adapter/pkgdb"
	"github.com/berth-dev/berth/plugins/scan/scanapi"
)

// Version is the adapter's version, in its metadata and reports.
const Version = "1.0.0"

// Defaults of Config.
const (
	DefaultMaxScans     = 4
	DefaultQueue        = 64
	DefaultRefreshAfter = 2 * time.Second
	DefaultRetention    = time.Hour
	DefaultPullTimeout  = 10 * time.Minute
)

// Config configures a Server.
type Config struct {
	// APIKey is the key every API call must carry; required.
	APIKey string
	// DB holds the advisories; required.
	DB *osv.DB
	// MaxScans is how many scans run at once (default 4).
	MaxScans int
	// Queue is how many accepted scans may wait (default 64).
	Queue int
	// RefreshAfter is the Refresh-After of a report that is not ready
	// (whole seconds, at least 1; default 2 s).
	RefreshAfter time.Duration
	// Retention is how long a finished scan's report is kept (default 1 h).
	Retention time.Duration
	// PullTimeout bounds one scan's pull and read (default 10 min).
	PullTimeout time.Duration
	// RegistryTransport is the HTTP transport to registries (nil: Go's
	// default, with the environment's proxy).
	RegistryTransport http.RoundTripper
	// Logger logs scans and refusals (nil: discard).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// validate applies the defaults and checks c, naming the field.
func (c *Config) validate() error {
	switch {
	case c.APIKey == "":
		return errors.New("server: APIKey is required (an adapter without a key would scan for anyone)")
	case c.DB == nil:
		return errors.New("server: DB is required")
	case c.MaxScans < 0, c.Queue < 0, c.RefreshAfter < 0, c.Retention < 0, c.PullTimeout < 0:
		return errors.New("server: MaxScans, Queue, RefreshAfter, Retention and PullTimeout must not be negative")
	}
	if c.MaxScans == 0 {
		c.MaxScans = DefaultMaxScans
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.RefreshAfter == 0 {
		c.RefreshAfter = DefaultRefreshAfter
	}
	c.RefreshAfter = max(c.RefreshAfter.Round(time.Second), time.Second)
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PullTimeout == 0 {
		c.PullTimeout = DefaultPullTimeout
	}
	if c.RegistryTransport == nil {
		c.RegistryTransport = http.DefaultTransport
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Server serves the scanner API. Make one with New, Start it, serve its
// Handler, Stop it.
type Server struct {
	cfg     Config
	scanner scanapi.Scanner
	queue   chan *scan

	mu         sync.Mutex
	scans      map[string]*scan
	running    int
	maxRunning int
	started    bool
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// state of a scan.
type state int

const (
	queued state = iota
	running
	done
	failed
)

// scan is one accepted scan request.
type scan struct {
	id       string
	req      scanapi.ScanRequest
	accepted time.Time

	// Guarded by Server.mu.
	state    state
	finished time.Time
	result   *result
	err      error
}

// result is what a finished scan found.
type result struct {
	inv      pkgdb.Inventory
	findings []finding
	at       time.Time
}

// finding is one advisory of one installed package.
type finding struct {
	pkg pkgdb.Package
	osv.Finding
}

// New checks cfg and makes a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Server{
		cfg:     cfg,
		scanner: scanapi.Scanner{Name: "Berth offline scanner", Vendor: "Berth", Version: Version},
		queue:   make(chan *scan, cfg.Queue),
		scans:   map[string]*scan{},
	}, nil
}

// Start starts the scan workers; they run until Stop or ctx ends. A
// second Start is an error.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	s.started = true
	ctx, s.stop = context.WithCancel(ctx)
	for range s.cfg.MaxScans {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work(ctx)
		}()
	}
	return nil
}

// Stop cancels the running scans and waits for the workers. It is safe to
// call twice, and before Start.
func (s *Server) Stop() {
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.wg.Wait()
}

// Stats are the server's counters, for tests and logs.
type Stats struct {
	// Running is the number of scans running now; MaxRunning the most
	// that ever ran at once.
	Running, MaxRunning int
}

// Stats reads the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Running: s.running, MaxRunning: s.maxRunning}
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /probe/healthy", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /probe/ready", s.ready)
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/metadata", s.metadata)
	api.HandleFunc("POST /api/v1/scan", s.accept)
	api.HandleFunc("GET /api/v1/scan/{id}/report", s.report)
	api.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no such operation: %s %s", r.Method, r.URL.Path))
	})
	mux.Handle("/api/v1/", s.auth(api))
	return mux
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		http.Error(w, "not started", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// auth refuses a call without the API key.
func (s *Server) auth(next http.Handler) http.Handler {
	want := []byte(s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(scanapi.HeaderAPIKey)
		if got == "" {
			if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				got = strings.TrimSpace(v)
			}
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			what := "no API key"
			if got != "" {
				what = "a wrong API key"
			}
			s.cfg.Logger.Warn("refused a call", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", what)
			w.Header().Set("WWW-Authenticate", `Bearer realm="scanner-adapter"`)
			s.fail(w, http.StatusUnauthorized, fmt.Sprintf("unauthorized: the request has %s; send the adapter's key in the %s header", what, scanapi.HeaderAPIKey))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// newID makes a scan ID: 128 random bits in the form of a UUID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// enqueue stores and queues a scan; false when the queue is full.
func (s *Server) enqueue(sc *scan) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	select {
	case s.queue <- sc:
		s.scans[sc.id] = sc
		return true
	default:
		return false
	}
}

// sweepLocked forgets finished scans older than the retention.
func (s *Server) sweepLocked() {
	cut := s.cfg.Now().Add(-s.cfg.Retention)
	for id, sc := range s.scans {
		if (sc.state == done || sc.state == failed) && sc.finished.Before(cut) {
			delete(s.scans, id)
		}
	}
}

func (s *Server) lookup(id string) (*scan, state, *result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	sc, ok := s.scans[id]
	if !ok {
		return nil, 0, nil, nil
	}
	return sc, sc.state, sc.result, sc.err
}

// work runs queued scans until ctx ends.
func (s *Server) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case sc := <-s.queue:
			s.run(ctx, sc)
		}
	}
}

func (s *Server) run(ctx context.Context, sc *scan) {
	s.mu.Lock()
	sc.state = running
	s.running++
	s.maxRunning = max(s.maxRunning, s.running)
	s.mu.Unlock()
	start := s.cfg.Now()
	log := s.cfg.Logger.With("scan", sc.id, "artifact", sc.req.Artifact.Repository+"@"+sc.req.Artifact.Digest)
	log.Info("scan started")

	ctx, cancel := context.WithTimeout(ctx, s.cfg.PullTimeout)
	res, err := s.scanArtifact(ctx, sc.req, log)
	cancel()

	s.mu.Lock()
	s.running--
	sc.finished = s.cfg.Now()
	if err != nil {
		sc.state, sc.err = failed, err
	} else {
		sc.state, sc.result = done, res
	}
	s.mu.Unlock()
	if err != nil {
		log.Error("scan failed", "error", err, "took", s.cfg.Now().Sub(start).Round(time.Millisecond))
		return
	}
	log.Info("scan done", "os", res.inv.OS.Ecosystem(), "packages", len(res.inv.Packages), "vulnerabilities", len(res.findings),
		"took", s.cfg.Now().Sub(start).Round(time.Millisecond))
}
