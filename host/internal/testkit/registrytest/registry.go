package registrytest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/crypto/bcrypt"

	"github.com/berth-dev/berth/host/internal/spawn"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// User is the name of the user that every registry with auth knows; its
// password is random (see Password). The package's own helpers log in as
// this user.
const User = "registrytest"

// logTail bounds how much of the registry's log a failed test shows.
const logTail = 64 << 10

// Registry is a running docker-registry behind a counting proxy, both on
// 127.0.0.1.
type Registry struct {
	cfg          config
	dir          string
	storageRoot  string
	configPath   string
	htpasswdPath string
	token        string // instance header and http.secret
	password     string
	log          *procs.Buffer

	proxy      *httptest.Server
	proxyTr    *http.Transport // the proxy's connections to the registry
	helperTr   *http.Transport // the helpers' connections to the registry
	requestsMu sync.Mutex
	requests   []Request

	mu      sync.Mutex
	proc    *spawn.Process
	backend string // host:port of the registry itself, "" while stopped
}

type config struct {
	auth     bool
	users    map[string]string
	readOnly bool
}

// Option configures a registry started by Start.
type Option func(*config)

// WithUsers adds htpasswd users (name → password) besides User.
func WithUsers(users map[string]string) Option {
	return func(c *config) {
		for name, pw := range users {
			c.users[name] = pw
		}
	}
}

// WithoutAuth starts the registry with no auth at all: anyone may push.
func WithoutAuth() Option { return func(c *config) { c.auth = false } }

// WithReadOnly starts the registry in read-only maintenance mode: pulls
// work, pushes and deletes are refused (405). See SetReadOnly.
func WithReadOnly() Option { return func(c *config) { c.readOnly = true } }

// Start starts a registry for this test and stops it in t.Cleanup: a real
// docker-registry with filesystem storage in a temp dir of the test, delete
// enabled, and htpasswd (bcrypt) Basic auth for User unless WithoutAuth. It
// fails the test if the registry does not answer within 15 seconds. When the
// test fails, its log is shown.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	cfg := config{auth: true, users: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := newRegistry(t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	t.Cleanup(func() {
		r.close()
		if t.Failed() {
			t.Logf("registry %s log:\n%s", r.Host(), r.logTail())
		}
	})
	return r
}

func newRegistry(dir string, cfg config) (*Registry, error) {
	if _, err := binary(); err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:          cfg,
		dir:          dir,
		storageRoot:  filepath.Join(dir, "storage"),
		configPath:   filepath.Join(dir, "config.yml"),
		htpasswdPath: filepath.Join(dir, "htpasswd"),
		token:        randomHex(16),
		log:          &procs.Buffer{},
		proxyTr:      &http.Transport{},
		helperTr:     &http.Transport{},
	}
	if err := os.MkdirAll(r.storageRoot, 0o755); err != nil {
		return nil, fmt.Errorf("create storage root: %w", err)
	}
	if cfg.auth {
		r.password = randomHex(12)
		if err := writeHtpasswd(r.htpasswdPath, User, r.password, cfg.users); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	err := r.start()
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r.proxy = httptest.NewServer(r.newProxy())
	return r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// writeHtpasswd writes an htpasswd file with bcrypt hashes (the only kind
// distribution accepts), at the lowest cost: the registry checks the hash on
// every request.
func writeHtpasswd(path, user, password string, more map[string]string) error {
	users := map[string]string{user: password}
	for name, pw := range more {
		if name == "" || strings.ContainsAny(name, ":\n") {
			return fmt.Errorf("htpasswd user %q: a name must be non-empty, without ':' or newline", name)
		}
		users[name] = pw
	}
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		hash, err := bcrypt.GenerateFromPassword([]byte(users[name]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("htpasswd user %q: %w", name, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", name, hash)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write htpasswd: %w", err)
	}
	return nil
}

// Host returns 127.0.0.1:<port>, where the registry answers (through the
// counting proxy). It stays the same across Restart.
func (r *Registry) Host() string { return strings.TrimPrefix(r.proxy.URL, "http://") }

// URL returns http://127.0.0.1:<port>.
func (r *Registry) URL() string { return r.proxy.URL }

// Ref returns ref prefixed with Host: Ref("library/a:v1") is
// "127.0.0.1:<port>/library/a:v1", the form image references take.
func (r *Registry) Ref(ref string) string { return r.Host() + "/" + ref }

// Password returns User's password, or "" WithoutAuth.
func (r *Registry) Password() string { return r.password }

// Username returns User, or "" WithoutAuth.
func (r *Registry) Username() string {
	if !r.cfg.auth {
		return ""
	}
	return User
}

// Auth returns User's credentials for go-containerregistry (anonymous
// WithoutAuth).
func (r *Registry) Auth() authn.Authenticator {
	if !r.cfg.auth {
		return authn.Anonymous
	}
	return &authn.Basic{Username: User, Password: r.password}
}

// StorageRoot returns the directory of the registry's filesystem storage
// (its storage.filesystem.rootdirectory; the data is under
// docker/registry/v2 inside it).
func (r *Registry) StorageRoot() string { return r.storageRoot }

// ConfigPath returns the registry's configuration file
// (distribution's config.yml: storage, delete, maintenance, http, auth).
func (r *Registry) ConfigPath() string { return r.configPath }

// Log returns what the registry has written so far: warnings, errors and
// an access log line per request, across restarts.
func (r *Registry) Log() string { return r.log.String() }

func (r *Registry) logTail() string {
	s := r.log.String()
	if len(s) > logTail {
		return fmt.Sprintf("(first %d bytes left out)\n%s", len(s)-logTail, s[len(s)-logTail:])
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

// Stop stops the registry now; the proxy stays and answers 502 until
// Restart. Safe to call more than once.
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *Registry) stopLocked() {
	if r.proc != nil {
		r.proc.Kill()
		r.proc, r.backend = nil, ""
	}
	r.helperTr.CloseIdleConnections()
	r.proxyTr.CloseIdleConnections()
}

// Restart stops the registry if it runs and starts it again with the same
// storage, users and Host.
func (r *Registry) Restart(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	fmt.Fprintf(r.log, "registrytest: restart\n")
	if err := r.start(); err != nil {
		t.Fatalf("registrytest: restart: %v", err)
	}
}

// SetReadOnly restarts the registry with read-only maintenance mode on or
// off.
func (r *Registry) SetReadOnly(t testing.TB, on bool) {
	t.Helper()
	r.mu.Lock()
	r.cfg.readOnly = on
	r.mu.Unlock()
	r.Restart(t)
}

// pid returns the registry's pid, or 0 while stopped.
func (r *Registry) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.proc.Exited() {
		return 0
	}
	return r.proc.Pid()
}

// backendHost returns the registry's own host:port, bypassing the proxy.
func (r *Registry) backendHost() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.backend == "" {
		return "", fmt.Errorf("the registry behind %s is stopped", r.proxy.URL)
	}
	return r.backend, nil
}

func (r *Registry) close() {
	r.Stop()
	if r.proxy != nil {
		r.proxy.Close()
	}
	r.proxyTr.CloseIdleConnections()
	r.helperTr.CloseIdleConnections()
}
