package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth/sdk/sdktest"
)

// The unit tests run the job through sdktest against
// go-containerregistry's in-process registry (a real implementation of
// the distribution API) on loopback, behind a small handler that records
// requests, may ask for Basic auth, and may fail requests on purpose.
// host/internal/daemon's replication tests run it against Debian's
// docker-registry through a real host.

// testUser and testPassword are the Basic credential of a testRegistry
// with auth.
const (
	testUser     = "replicator"
	testPassword = "pa55-W0rd-never-logged"
)

// testRegistry is an in-process registry on loopback.
type testRegistry struct {
	srv  *httptest.Server
	auth bool
	// bearer: the registry wants a bearer token of its token service
	// (/service/token, which takes the Basic credential), as Harbor does.
	bearer bool
	token  string

	mu    sync.Mutex
	reqs  []string                  // "METHOD path"
	fault func(r *http.Request) int // a status to answer instead, or 0
}

func newTestRegistry(t *testing.T, auth bool) *testRegistry {
	return startTestRegistry(t, &testRegistry{auth: auth})
}

// newTokenRegistry is a registry with a token service, as Harbor's.
func newTokenRegistry(t *testing.T) *testRegistry {
	return startTestRegistry(t, &testRegistry{bearer: true, token: "tok-" + strings.Repeat("7f3a", 8)})
}

func startTestRegistry(t *testing.T, reg *testRegistry) *testRegistry {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reg.bearer && r.URL.Path == "/service/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPassword {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"token": reg.token, "expires_in": 300})
			return
		}
		if reg.bearer && r.Header.Get("Authorization") != "Bearer "+reg.token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+reg.srv.URL+`/service/token",service="test-registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if reg.auth {
			u, p, ok := r.BasicAuth()
			if !ok || u != testUser || p != testPassword {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		reg.mu.Lock()
		reg.reqs = append(reg.reqs, r.Method+" "+r.URL.Path)
		fault := reg.fault
		reg.mu.Unlock()
		if fault != nil {
			if code := fault(r); code != 0 {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(code)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.srv.Close)
	return reg
}

func (reg *testRegistry) host() string { return strings.TrimPrefix(reg.srv.URL, "http://") }

func (reg *testRegistry) setFault(f func(r *http.Request) int) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.fault = f
}

// requests returns the requests the registry got (past auth) whose
// method is method and path holds part.
func (reg *testRegistry) requests(method, part string) []string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var out []string
	for _, q := range reg.reqs {
		m, p, _ := strings.Cut(q, " ")
		if (method == "" || m == method) && strings.Contains(p, part) {
			out = append(out, q)
		}
	}
	return out
}

// writes are the requests that may change the registry.
func (reg *testRegistry) writes() []string {
	var out []string
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		out = append(out, reg.requests(m, "")...)
	}
	return out
}

func (reg *testRegistry) reset() {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.reqs = nil
}

func (reg *testRegistry) options(t *testing.T) []remote.Option {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	opts := []remote.Option{remote.WithContext(ctx)}
	if reg.auth || reg.bearer {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword}))
	}
	return opts
}

func (reg *testRegistry) ref(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(reg.host()+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// push pushes a random image of layers layers of size bytes to ref and
// returns its digest.
func (reg *testRegistry) push(t *testing.T, ref string, layers int, size int64) string {
	t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(reg.ref(t, ref), img, reg.options(t)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// pushIndex pushes a random index of images images to ref.
func (reg *testRegistry) pushIndex(t *testing.T, ref string, images int) string {
	t.Helper()
	idx, err := random.Index(2048, 2, int64(images))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(reg.ref(t, ref), idx, reg.options(t)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := idx.Digest()
	return d.String()
}

// digest returns the digest at ref, "" when there is none.
func (reg *testRegistry) digest(t *testing.T, ref string) string {
	t.Helper()
	d, err := remote.Head(reg.ref(t, ref), reg.options(t)...)
	var terr *transport.Error
	switch {
	case err == nil:
		return d.Digest.String()
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return ""
	}
	t.Fatalf("head %s: %v", ref, err)
	return ""
}

// validate checks, with go-containerregistry's validate package, the
// image or index at ref.
func (reg *testRegistry) validate(t *testing.T, ref string) {
	t.Helper()
	desc, err := remote.Get(reg.ref(t, ref), reg.options(t)...)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = validate.Index(idx)
		}
		if err != nil {
			t.Fatalf("validate index %s: %v", ref, err)
		}
		return
	}
	img, err := desc.Image()
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Fatalf("validate image %s: %v", ref, err)
	}
}

// resourceOf is a resource parameter: the registry, a repository and its
// artifacts' tags, as Harbor's core encodes it (a JSON string).
func (reg *testRegistry) resourceOf(password string, repo string, tags ...[]string) string {
	r := map[string]any{
		"type": "image",
		"registry": map[string]any{
			"id": 1, "name": "test", "type": "docker-registry", "url": reg.srv.URL, "insecure": true,
			"credential": map[string]any{"type": "basic", "access_key": testUser, "access_secret": password},
		},
		"metadata": map[string]any{"repository": map[string]any{"name": repo}, "artifacts": artifactsOf(tags)},
	}
	raw, _ := json.Marshal(r)
	return string(raw)
}

func artifactsOf(tags [][]string) []any {
	out := []any{}
	for _, ts := range tags {
		out = append(out, map[string]any{"type": "image", "tags": ts})
	}
	return out
}

// run runs a REPLICATION job with params to its end.
func runJob(t *testing.T, params map[string]any) sdktest.Result {
	t.Helper()
	job, config := newPlugin()
	return sdktest.Run(t, job, params, sdktest.WithPlugin(config), sdktest.WithConfig(allowLoopback))
}

// startJob starts a REPLICATION job with params.
func startJob(t *testing.T, params map[string]any) *sdktest.Running {
	t.Helper()
	job, config := newPlugin()
	return sdktest.Start(t, job, params, sdktest.WithPlugin(config), sdktest.WithConfig(allowLoopback))
}

var allowLoopback = map[string]any{"allowed_networks": []string{"127.0.0.0/8"}}

// checkins decodes a run's check-ins.
func checkins(t *testing.T, res sdktest.Result) []checkin {
	t.Helper()
	var out []checkin
	for _, c := range res.CheckIns {
		var ci checkin
		if err := json.Unmarshal([]byte(c), &ci); err != nil {
			t.Fatalf("check-in %q is not JSON: %v", c, err)
		}
		out = append(out, ci)
	}
	return out
}

func logText(res sdktest.Result) string {
	var b strings.Builder
	for _, l := range res.Logs {
		b.WriteString(l.Level + " " + l.Message + "\n")
	}
	return b.String()
}
