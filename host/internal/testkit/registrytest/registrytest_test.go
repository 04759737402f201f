package registrytest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pidGone reports whether pid no longer runs. A zombie counts as gone: in a
// container whose init does not reap, an orphan killed by its parent-death
// signal stays a zombie.
func pidGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return runtime.GOOS == "linux"
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// waitGone waits until pid is gone, for at most five seconds.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !pidGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("docker-registry pid %d still running %s", pid, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get sends GET url with Basic credentials unless user is "".
func get(t *testing.T, url, user, password string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// push writes img to ref through the proxy, as code under test would, and
// returns the error.
func push(t *testing.T, reg *Registry, ref string, img v1.Image, auth bool) error {
	t.Helper()
	parsed, err := name.ParseReference(reg.Ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := []remote.Option{remote.WithTransport(tr), remote.WithContext(ctx)}
	if auth {
		opts = append(opts, remote.WithAuth(reg.Auth()))
	}
	return remote.Write(parsed, img, opts...)
}

func statusOf(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

func TestStart(t *testing.T) {
	t.Parallel()
	reg := Start(t, WithUsers(map[string]string{"alice": "wonder:land"}))
	if !strings.HasPrefix(reg.URL(), "http://127.0.0.1:") || reg.URL() != "http://"+reg.Host() {
		t.Fatalf("URL() = %q, Host() = %q", reg.URL(), reg.Host())
	}
	if got, want := reg.Ref("a/b:v1"), reg.Host()+"/a/b:v1"; got != want {
		t.Fatalf("Ref = %q, want %q", got, want)
	}
	if reg.Username() != User || reg.Password() == "" {
		t.Fatalf("Username() = %q, Password() = %q", reg.Username(), reg.Password())
	}
	if fi, err := os.Stat(reg.StorageRoot()); err != nil || !fi.IsDir() {
		t.Fatalf("StorageRoot %s: %v", reg.StorageRoot(), err)
	}
	conf, err := os.ReadFile(reg.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rootdirectory: " + reg.StorageRoot(), "delete:\n        enabled: true", "htpasswd:"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}

	tests := []struct {
		name, user, password string
		want                 int
	}{
		{"NoCredentials", "", "", http.StatusUnauthorized},
		{"WrongPassword", User, "wrong", http.StatusUnauthorized},
		{"UnknownUser", "bob", reg.Password(), http.StatusUnauthorized},
		{"User", User, reg.Password(), http.StatusOK},
		{"ExtraUser", "alice", "wonder:land", http.StatusOK},
	}
	for _, tt := range tests {
		resp := get(t, reg.URL()+"/v2/", tt.user, tt.password)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: GET /v2/ = %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "Basic ") {
			t.Errorf("%s: WWW-Authenticate = %q, want Basic", tt.name, resp.Header.Get("Www-Authenticate"))
		}
	}
	// The proxy records what it forwards, with the registry's status.
	want := []Request{
		{"GET", "/v2/", 401}, {"GET", "/v2/", 401}, {"GET", "/v2/", 401},
		{"GET", "/v2/", 200}, {"GET", "/v2/", 200},
	}
	if got := reg.Requests(); !slices.Equal(got, want) {
		t.Fatalf("Requests() = %v, want %v", got, want)
	}
	if err := push(t, reg, "x:v1", RandomImage(t, 1), false); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous push: %v, want 401", err)
	}
}

func TestWithoutAuth(t *testing.T) {
	t.Parallel()
	reg := Start(t, WithoutAuth())
	if resp := get(t, reg.URL()+"/v2/", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous GET /v2/ = %d, want 200", resp.StatusCode)
	}
	if reg.Username() != "" || reg.Password() != "" {
		t.Fatalf("Username() = %q, Password() = %q WithoutAuth", reg.Username(), reg.Password())
	}
	if err := push(t, reg, "x:v1", RandomImage(t, 1), false); err != nil {
		t.Fatalf("anonymous push: %v", err)
	}
	reg.Validate(t, "x:v1")
}

func TestPushValidate(t *testing.T) {
	t.Parallel()
	reg := Start(t)
	t.Run("Image", func(t *testing.T) {
		d := reg.PushRandom(t, "lib/img:v1", 3)
		if !strings.HasPrefix(d, "sha256:") || reg.Digest(t, "lib/img:v1") != d {
			t.Fatalf("PushRandom = %q, Digest = %q", d, reg.Digest(t, "lib/img:v1"))
		}
		if reg.Digest(t, reg.Ref("lib/img:v1")) != d {
			t.Fatal("Digest of the Host-prefixed reference differs")
		}
		reg.Validate(t, "lib/img:v1")
		reg.Validate(t, "lib/img@"+d)
	})
	t.Run("Index", func(t *testing.T) {
		idx := RandomIndex(t, 3, 2)
		d := reg.PushIndex(t, "lib/idx:v1", idx)
		if reg.Digest(t, "lib/idx:v1") != d {
			t.Fatalf("PushIndex = %q, Digest = %q", d, reg.Digest(t, "lib/idx:v1"))
		}
		reg.Validate(t, "lib/idx:v1")
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range im.Manifests {
			if !reg.Exists(t, "lib/idx@"+m.Digest.String()) {
				t.Errorf("image %s of the index not pushed", m.Digest)
			}
		}
	})
	t.Run("Files", func(t *testing.T) {
		files := map[string]string{"etc/os-release": "ID=debian\n", "var/lib/dpkg/status": "Package: a\n\n"}
		img := ImageWithFiles(t, files, map[string]string{"usr/bin/tool": "#!/bin/sh\n"})
		reg.Push(t, "lib/files:v1", img)
		reg.Validate(t, "lib/files:v1")
		got := pulledFiles(t, reg, "lib/files:v1")
		want := map[string]string{"etc/os-release": "ID=debian\n", "var/lib/dpkg/status": "Package: a\n\n", "usr/bin/tool": "#!/bin/sh\n"}
		for p, body := range want {
			if got[p] != body {
				t.Errorf("file %s = %q, want %q (all: %v)", p, got[p], body, got)
			}
		}
		if layers, _ := img.Layers(); len(layers) != 2 {
			t.Errorf("%d layers, want 2", len(layers))
		}
		if again := ImageWithFiles(t, files); layerDigests(t, again)[0] != layerDigests(t, img)[0] {
			t.Error("the same files made a different layer")
		}
		if cf, _ := img.ConfigFile(); cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
		}
	})
	// Helpers bypass the proxy.
	if got := reg.Requests(); len(got) != 0 {
		t.Fatalf("helpers were recorded: %v", got)
	}
}

// pulledFiles pulls ref and returns its flattened regular files.
func pulledFiles(t *testing.T, reg *Registry, ref string) map[string]string {
	t.Helper()
	parsed, opts, cancel := reg.reference(t, ref)
	defer cancel()
	img, err := remote.Image(parsed, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[hdr.Name] = string(b)
		}
	}
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

func TestRequestCounting(t *testing.T) {
	t.Parallel()
	reg := Start(t)
	img := RandomImage(t, 2)
	if err := push(t, reg, "counted:v1", img, true); err != nil {
		t.Fatal(err)
	}
	// Two layers and the config: one upload each.
	for _, c := range []struct {
		method, pattern string
		want            int
	}{
		{"POST", "/blobs/uploads/$", 3},
		{"PATCH", "/blobs/uploads/", 3},
		{"patch", "^/v2/counted/blobs/uploads/[0-9a-f-]+$", 3},
		{"PUT", "/blobs/uploads/", 3},
		{"PUT", "/manifests/v1$", 1},
		{"DELETE", "", 0},
	} {
		if got := reg.Count(c.method, c.pattern); got != c.want {
			t.Errorf("Count(%q, %q) = %d, want %d; requests:\n%v", c.method, c.pattern, got, c.want, reg.Requests())
		}
	}
	if n := len(reg.Writes()); n != 10 {
		t.Errorf("%d writes, want 10 (3 POST, 3 PATCH, 4 PUT): %v", n, reg.Writes())
	}
	for _, q := range reg.Requests() {
		if q.Status >= 300 && q.Status != http.StatusUnauthorized && q.Status != http.StatusNotFound {
			t.Errorf("unexpected status: %s", q)
		}
	}
	reg.Validate(t, "counted:v1")

	reg.Reset()
	if got := reg.Requests(); len(got) != 0 {
		t.Fatalf("after Reset: %v", got)
	}
	// A second push finds the manifest (ggcr asks for it first) and
	// uploads nothing.
	if err := push(t, reg, "counted:v1", img, true); err != nil {
		t.Fatal(err)
	}
	if n := reg.Count("", "/blobs/uploads/"); n != 0 {
		t.Errorf("the second push uploaded: %v", reg.Requests())
	}
	if n := reg.Count("HEAD", "/manifests/v1$"); n != 1 {
		t.Errorf("Count(HEAD, manifest) = %d, want 1: %v", n, reg.Requests())
	}
	if s := (Request{"PATCH", "/v2/a/blobs/uploads/u", 202}).String(); s != "PATCH /v2/a/blobs/uploads/u 202" {
		t.Errorf("String() = %q", s)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	reg := Start(t)
	d1 := reg.PushRandom(t, "del:v1", 1)
	d2 := reg.PushRandom(t, "del:v2", 1)
	reg.Delete(t, "del:v1")
	if reg.Exists(t, "del:v1") || reg.Exists(t, "del@"+d1) {
		t.Fatal("del:v1 still there after Delete by tag")
	}
	reg.Delete(t, "del@"+d2)
	if reg.Exists(t, "del:v2") {
		t.Fatal("del:v2 still there after Delete by digest")
	}
	if resp := get(t, reg.URL()+"/v2/del/manifests/"+d2, User, reg.Password()); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET deleted manifest = %d, want 404", resp.StatusCode)
	}
}

func TestGarbageCollect(t *testing.T) {
	t.Parallel()
	reg := Start(t)
	oldImg := RandomImage(t, 2)
	old := reg.Push(t, "a:v1", oldImg)
	cur := RandomImage(t, 2)
	reg.Push(t, "a:v1", cur) // old is untagged now
	next := Extend(t, cur, 1)
	reg.Push(t, "a:v2", next)
	if shared := layerDigests(t, next)[:2]; !slices.Equal(shared, layerDigests(t, cur)) {
		t.Fatalf("Extend does not share the base's layers: %v vs %v", shared, layerDigests(t, cur))
	}
	before := reg.Blobs(t)
	for _, l := range layerDigests(t, oldImg) {
		if !slices.Contains(before, l) {
			t.Fatalf("layer %s of the old image not in Blobs %v", l, before)
		}
	}
	out := reg.GarbageCollect(t, true)
	after := reg.Blobs(t)
	for _, l := range layerDigests(t, oldImg) {
		if slices.Contains(after, l) {
			t.Errorf("layer %s of the untagged image survived GC:\n%s", l, out)
		}
	}
	if reg.Exists(t, "a@"+old) {
		t.Error("the untagged manifest survived GC")
	}
	for _, l := range layerDigests(t, next) {
		if !slices.Contains(after, l) {
			t.Errorf("layer %s of a:v2 collected", l)
		}
	}
	reg.Validate(t, "a:v1")
	reg.Validate(t, "a:v2")
}

func TestReadOnlyAndRestart(t *testing.T) {
	t.Parallel()
	reg := Start(t, WithReadOnly())
	host, pid := reg.Host(), reg.pid()
	if err := push(t, reg, "ro:v1", RandomImage(t, 1), true); statusOf(err) != http.StatusMethodNotAllowed {
		t.Fatalf("push to a read-only registry: %v, want 405", err)
	}
	reg.SetReadOnly(t, false)
	if reg.Host() != host || reg.pid() == pid || reg.pid() == 0 {
		t.Fatalf("after SetReadOnly: Host %s (was %s), pid %d (was %d)", reg.Host(), host, reg.pid(), pid)
	}
	waitGone(t, pid, "after SetReadOnly")
	d := reg.PushRandom(t, "ro:v1", 1)

	reg.Stop()
	reg.Stop() // twice is fine
	reg.Reset()
	if resp := get(t, reg.URL()+"/v2/", "", ""); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("GET /v2/ while stopped = %d, want 502", resp.StatusCode)
	}
	if got := reg.Requests(); !slices.Equal(got, []Request{{"GET", "/v2/", 502}}) {
		t.Fatalf("Requests() while stopped = %v", got)
	}
	reg.Restart(t)
	if reg.Digest(t, "ro:v1") != d {
		t.Fatal("the image did not survive Restart")
	}
	reg.Validate(t, "ro:v1")
	if resp := get(t, reg.URL()+"/v2/", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ after Restart = %d, want 401", resp.StatusCode)
	}
}

func TestManyParallel(t *testing.T) {
	t.Parallel()
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			reg := Start(t)
			reg.PushRandom(t, "p:v1", 1)
			reg.Validate(t, "p:v1")
		})
	}
}

func TestCleanupKillsProcess(t *testing.T) {
	t.Parallel()
	var pid int
	var root string
	t.Run("Inner", func(t *testing.T) {
		reg := Start(t)
		pid, root = reg.pid(), reg.StorageRoot()
		if pid == 0 || pidGone(pid) {
			t.Fatalf("registry pid %d not running", pid)
		}
	})
	if pid == 0 {
		t.Fatal("no pid")
	}
	if !pidGone(pid) {
		t.Fatalf("docker-registry pid %d still running after cleanup", pid)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("storage %s left after cleanup: %v", root, err)
	}
}

// child runs this test binary with one test and an environment variable set,
// and returns its output and exit error.
func child(t *testing.T, test, env string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestNoOrphanAfterExit runs this test binary as a child that starts a
// registry and exits without cleanup; the registry must die with it.
func TestNoOrphanAfterExit(t *testing.T) {
	if os.Getenv("REGISTRYTEST_ORPHAN_CHILD") == "1" {
		reg := Start(t)
		fmt.Printf("pid=%d\n", reg.pid())
		os.Exit(0)
	}
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux only")
	}
	t.Parallel()
	out, err := child(t, "TestNoOrphanAfterExit", "REGISTRYTEST_ORPHAN_CHILD")
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var pid int
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "pid="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatalf("child printed no pid:\n%s", out)
	}
	waitGone(t, pid, "after its test binary exited")
}

// TestFailureShowsLog runs a failing test in a child and looks for the
// registry's log in its output.
func TestFailureShowsLog(t *testing.T) {
	if os.Getenv("REGISTRYTEST_FAIL_CHILD") == "1" {
		reg := Start(t)
		get(t, reg.URL()+"/v2/registrytest-marker/tags/list", "", "")
		t.Fatal("failing on purpose")
	}
	t.Parallel()
	out, err := child(t, "TestFailureShowsLog", "REGISTRYTEST_FAIL_CHILD")
	if err == nil {
		t.Fatalf("the failing child passed:\n%s", out)
	}
	for _, want := range []string{
		"failing on purpose",
		"registry 127.0.0.1:",
		`"GET /v2/registrytest-marker/tags/list HTTP/1.1" 401`, // the access log
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

// TestPassShowsNoLog: a passing test does not print the registry's log.
func TestPassShowsNoLog(t *testing.T) {
	if os.Getenv("REGISTRYTEST_PASS_CHILD") == "1" {
		reg := Start(t)
		get(t, reg.URL()+"/v2/", "", "")
		return
	}
	t.Parallel()
	out, err := child(t, "TestPassShowsNoLog", "REGISTRYTEST_PASS_CHILD")
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(out, "registry 127.0.0.1:") {
		t.Fatalf("a passing test printed the log:\n%s", out)
	}
}

// Not parallel: it changes PATH.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := newRegistry(t.TempDir(), config{auth: true})
	if err == nil {
		t.Fatal("started without docker-registry on PATH")
	}
	for _, w := range []string{"docker-registry not found", "make deps", "apt-get install -y docker-registry"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestBadUser(t *testing.T) {
	t.Parallel()
	_, err := newRegistry(t.TempDir(), config{auth: true, users: map[string]string{"a:b": "pw"}})
	if err == nil || !strings.Contains(err.Error(), `"a:b"`) {
		t.Fatalf("user with ':' accepted: %v", err)
	}
}
