package oci

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/sdk/egress"
)

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		check func(string, string) error
		value string
		ok    bool
	}{
		{ValidRepository, "library/nginx", true},
		{ValidRepository, "a", true},
		{ValidRepository, "a.b_c__d--e/f-g", true},
		{ValidRepository, "", false},
		{ValidRepository, "Library/nginx", false},
		{ValidRepository, "a//b", false},
		{ValidRepository, "a/", false},
		{ValidRepository, "-a", false},
		{ValidRepository, "a___b", false},
		{ValidRepository, strings.Repeat("a", 256), false},
		{ValidTag, "v1.2.3-rc_1", true},
		{ValidTag, "_x", true},
		{ValidTag, strings.Repeat("a", 128), true},
		{ValidTag, strings.Repeat("a", 129), false},
		{ValidTag, ".x", false},
		{ValidTag, "-x", false},
		{ValidTag, "a/b", false},
		{ValidTag, "", false},
		{ValidDigest, "sha256:" + strings.Repeat("0a", 32), true},
		{ValidDigest, "sha256:" + strings.Repeat("0A", 32), false},
		{ValidDigest, "sha256:abc", false},
		{ValidDigest, "md5:" + strings.Repeat("0a", 16), false},
	} {
		err := tc.check("f", tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("check %q = %v, want ok %v", tc.value, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), `"f" must be`) {
			t.Errorf("check %q = %v: does not name the field", tc.value, err)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	g, _ := egress.New(nil)
	basic := &Credential{Type: CredentialBasic, AccessKey: "u", AccessSecret: "p"}
	for _, tc := range []struct {
		name string
		r    Registry
		want string // "" for ok
	}{
		{"Harbor", Registry{Type: TypeHarbor, URL: "https://harbor.example.com", Credential: basic}, ""},
		{"Anonymous", Registry{Type: TypeDockerRegistry, URL: "http://r.example.com:5000/"}, ""},
		{"OAuth", Registry{Type: TypeDockerRegistry, URL: "https://r.example.com", Credential: &Credential{Type: CredentialOAuth, AccessKey: "u", AccessSecret: "p"}}, ""},
		{"Secret", Registry{Type: TypeHarbor, URL: "http://core.example.com", Credential: &Credential{Type: CredentialSecret, AccessSecret: "s"}}, ""},
		{"SecretWithoutSecret", Registry{Type: TypeHarbor, URL: "http://core.example.com", Credential: &Credential{Type: CredentialSecret}}, `"r.credential.access_secret" must be Harbor's secret`},
		{"Type", Registry{Type: "gcr", URL: "https://r.example.com"}, `"r.type" must be "docker-registry" or "harbor", got "gcr"`},
		{"Scheme", Registry{Type: TypeHarbor, URL: "ftp://r.example.com"}, `"r.url" must be an http or https URL, got one with scheme "ftp"`},
		{"NoHost", Registry{Type: TypeHarbor, URL: "https://"}, `"r.url" must be an http or https URL with a host`},
		{"User", Registry{Type: TypeHarbor, URL: "https://u:pw@r.example.com"}, `"r.url" must not hold a user or password`},
		{"Path", Registry{Type: TypeHarbor, URL: "https://r.example.com/x"}, `"r.url" must be the registry's base URL`},
		{"Refused", Registry{Type: TypeHarbor, URL: "http://10.0.0.1"}, `"r.url" (10.0.0.1) is refused: 10.0.0.1 is in 10.0.0.0/8 (private)`},
		{"CredentialType", Registry{Type: TypeHarbor, URL: "https://r.example.com", Credential: &Credential{Type: "x"}}, `"r.credential.type" must be`},
		{"BasicWithoutUser", Registry{Type: TypeHarbor, URL: "https://r.example.com", Credential: &Credential{AccessSecret: "p"}}, `"r.credential.access_key" must be the user name`},
	} {
		err := tc.r.Check("r", g)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}

// basicRegistry is go-containerregistry's registry behind Basic auth.
func basicRegistry(t *testing.T, tls bool) *httptest.Server {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "s3cret-pass" {
			w.Header().Set("WWW-Authenticate", `Basic realm="t"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(auth)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestDial(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	allow, _ := egress.New([]string{"127.0.0.0/8"})
	plain, secure := basicRegistry(t, false), basicRegistry(t, true)
	good := &Credential{Type: CredentialBasic, AccessKey: "user", AccessSecret: "s3cret-pass"}
	bad := &Credential{Type: CredentialBasic, AccessKey: "user", AccessSecret: "wrong-pass-123"}

	if _, err := Dial(ctx, "r", Registry{Type: TypeDockerRegistry, URL: plain.URL, Credential: good}, allow, "t"); err != nil {
		t.Fatalf("Dial with the password = %v", err)
	}
	_, err := Dial(ctx, "r", Registry{Type: TypeDockerRegistry, URL: plain.URL, Credential: bad}, allow, "t")
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-pass-123") || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("Dial with a wrong password = %v", err)
	}
	_, err = Dial(ctx, "r", Registry{Type: TypeDockerRegistry, URL: plain.URL}, allow, "t")
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial without a credential = %v", err)
	}
	deny, _ := egress.New(nil)
	_, err = Dial(ctx, "r", Registry{Type: TypeDockerRegistry, URL: plain.URL, Credential: good}, deny, "t")
	var refused *egress.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("Dial to loopback, not allowed = %v", err)
	}
	// TLS: a self-signed certificate is refused unless insecure.
	if _, err := Dial(ctx, "r", Registry{Type: TypeDockerRegistry, URL: secure.URL, Credential: good}, allow, "t"); err == nil || errors.Is(err, ErrAuth) {
		t.Fatalf("Dial to an unknown certificate = %v", err)
	}
	c, err := Dial(ctx, "r", Registry{Type: TypeDockerRegistry, URL: secure.URL, Credential: good, Insecure: true}, allow, "t")
	if err != nil {
		t.Fatalf("Dial insecure = %v", err)
	}
	// go-containerregistry's own calls go over https too, although it
	// picks http for a loopback host by name.
	repo, err := c.Repository("library/a")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("v1"), img, c.Options(ctx)...); err != nil {
		t.Fatalf("Write over https = %v", err)
	}
	if tags, err := remote.List(repo, c.Options(ctx)...); err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("List over https = %v, %v", tags, err)
	}
}

// A "secret" credential is sent as Harbor's Harbor-Secret header.
func TestDialHarborSecret(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Harbor-Secret core-secret-1" {
			w.Header().Set("WWW-Authenticate", `Basic realm="harbor"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	allow, _ := egress.New([]string{"127.0.0.0/8"})
	r := Registry{Type: TypeHarbor, URL: srv.URL, Credential: &Credential{Type: CredentialSecret, AccessSecret: "core-secret-1"}}
	if _, err := Dial(ctx, "r", r, allow, "t"); err != nil {
		t.Fatalf("Dial with the secret = %v", err)
	}
	r.Credential.AccessSecret = "core-secret-2"
	if _, err := Dial(ctx, "r", r, allow, "t"); !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "core-secret-2") {
		t.Fatalf("Dial with another secret = %v", err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	c := &Client{secret: replacer(&Credential{AccessKey: "user", AccessSecret: "p@ss word"})}
	inner := errors.New(`got "p@ss word", "p%40ss+word" and Basic dXNlcjpwQHNzIHdvcmQ=`)
	err := c.Redact(inner)
	if got := err.Error(); got != `got "***", "***" and Basic ***` {
		t.Fatalf("Redact = %q", got)
	}
	if !errors.Is(err, inner) {
		t.Fatal("Redact hides what it wraps from errors.Is")
	}
	if c.Redact(nil) != nil {
		t.Fatal("Redact(nil) is not nil")
	}
}
