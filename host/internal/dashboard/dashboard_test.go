package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/berth-dev/berth/host/internal/dashboard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return answer{status: rec.Code, header: rec.Result().Header, body: string(body)}
}

// wantSecurityHeaders checks the headers every answer carries.
func wantSecurityHeaders(t *testing.T, a answer) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy":      dashboard.ContentSecurityPolicy,
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
		"Referrer-Policy":              "no-referrer",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
	} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
}

func TestThePolicyAllowsOnlyTheDashboardItself(t *testing.T) {
	t.Parallel()
	csp := dashboard.ContentSecurityPolicy
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("the CSP %q allows %q", csp, bad)
		}
	}
}

func TestServesEachFile(t *testing.T) {
	t.Parallel()
	h := dashboard.New()
	tests := []struct{ path, contentType, contains string }{
		{"/dashboard/", "text/html; charset=utf-8", "<title>Berth</title>"},
		{"/dashboard/index.html", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "'use strict'"},
		{"/dashboard/style.css", "text/css; charset=utf-8", ":root"},
		{"/dashboard/icon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/dashboard/"), func(t *testing.T) {
			t.Parallel()
			a := get(t, h, http.MethodGet, tt.path, nil)
			if a.status != http.StatusOK || !strings.Contains(a.body, tt.contains) {
				t.Fatalf("GET %s = %d, body without %q", tt.path, a.status, tt.contains)
			}
			wantSecurityHeaders(t, a)
			if got := a.header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q; want %q", got, tt.contentType)
			}
			if got := a.header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q; want no-cache", got)
			}
			etag := a.header.Get("ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(etag) {
				t.Fatalf("ETag = %q", etag)
			}
			head := get(t, h, http.MethodHead, tt.path, nil)
			if head.status != http.StatusOK || head.body != "" || head.header.Get("Content-Length") != a.header.Get("Content-Length") {
				t.Errorf("HEAD %s = %d with %d bytes, length %s", tt.path, head.status, len(head.body), head.header.Get("Content-Length"))
			}
			again := get(t, h, http.MethodGet, tt.path, map[string]string{"If-None-Match": `"other", ` + etag})
			if again.status != http.StatusNotModified || again.body != "" {
				t.Errorf("GET %s with its ETag = %d; want 304", tt.path, again.status)
			}
			wantSecurityHeaders(t, again)
			if other := get(t, h, http.MethodGet, tt.path, map[string]string{"If-None-Match": `"other"`}); other.status != http.StatusOK {
				t.Errorf("GET %s with another ETag = %d; want 200", tt.path, other.status)
			}
		})
	}
}

func TestRedirectsToTheSlash(t *testing.T) {
	t.Parallel()
	a := get(t, dashboard.New(), http.MethodGet, "/dashboard", nil)
	if a.status != http.StatusMovedPermanently || a.header.Get("Location") != "/dashboard/" {
		t.Fatalf("GET /dashboard = %d to %q; want 301 to /dashboard/", a.status, a.header.Get("Location"))
	}
}

func TestServesNothingElse(t *testing.T) {
	t.Parallel()
	h := dashboard.New()
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/static/app.js", "/dashboard/%2e%2e/dashboard.go",
		"/dashboard/..%2fdashboard.go", "/dashboard//app.js", "/dashboard/app.js/", "/dashboard/APP.JS", "/dashboard/dashboard.go"} {
		a := get(t, h, http.MethodGet, p, nil)
		if a.status != http.StatusNotFound {
			t.Errorf("GET %s = %d; want 404", p, a.status)
		}
		wantSecurityHeaders(t, a)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		a := get(t, h, m, "/dashboard/", nil)
		if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /dashboard/ = %d, Allow %q; want 405 and GET, HEAD", m, a.status, a.header.Get("Allow"))
		}
	}
}

func file(t *testing.T, name string) string {
	t.Helper()
	a := get(t, dashboard.New(), http.MethodGet, "/dashboard/"+name, nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET %s = %d", name, a.status)
	}
	return a.body
}

// The page loads nothing from elsewhere and runs no inline code: what the
// CSP enforces in a browser, checked here in the files themselves.
func TestThePageIsSelfContained(t *testing.T) {
	t.Parallel()
	served := dashboard.New().Files()
	index := file(t, "index.html")
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(index, -1) {
		ref := m[1]
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if !slices.Contains(served, ref) {
			t.Errorf("index.html refers to %q, which the dashboard does not serve", ref)
		}
	}
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>|<script>`).MatchString(index) {
		t.Error("index.html has an inline script")
	}
	if regexp.MustCompile(`\s(?:on[a-z]+|style)=`).MatchString(index) || strings.Contains(index, "<style") {
		t.Error("index.html has an inline handler or style")
	}
	for _, name := range served {
		body := file(t, name)
		body = strings.ReplaceAll(body, `xmlns="http://www.w3.org/2000/svg"`, "")
		if regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).MatchString(body) {
			t.Errorf("%s refers to another origin", name)
		}
	}
}

func TestTheScriptKeepsTheSecretAndTheDOMSafe(t *testing.T) {
	t.Parallel()
	js := file(t, "app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"localStorage", "document.cookie", "EventSource", "?secret", "&secret"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %q", bad)
		}
	}
	for _, want := range []string{"sessionStorage", "'Harbor-Secret '", "credentials: 'omit'", "getReader()"} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %q", want)
		}
	}
	// Every element the script looks up is in the page.
	index := file(t, "index.html")
	for _, m := range regexp.MustCompile(`\$\('([a-z0-9-]+)'\)`).FindAllStringSubmatch(js, -1) {
		if !strings.Contains(index, `id="`+m[1]+`"`) {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
}
