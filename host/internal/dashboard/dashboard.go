package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Path is where the dashboard is served; Path without its slash redirects
// to it.
const Path = "/dashboard/"

// ContentSecurityPolicy is sent with every answer of the handler: only
// the dashboard's own files run, only the page's origin is called, no
// inline script or style, no frame, no form that navigates, and no DOM
// sink that takes a string (Trusted Types).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// contentTypes are the types of the files, fixed here rather than read
// from the system's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

//go:embed static
var static embed.FS

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the dashboard's files.
type Handler struct {
	files map[string]*file // by path under Path; "" is index.html
}

// New returns the handler of the dashboard's files. It serves GET and
// HEAD of Path and the files below it, and redirects Path without its
// trailing slash to Path.
func New() *Handler {
	h := &Handler{files: map[string]*file{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", p)
		}
		name := strings.TrimPrefix(p, "static/")
		h.files[name] = &file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil { // cannot happen: the files are in the binary
		panic("dashboard: read the embedded files: " + err.Error())
	}
	h.files[""] = h.files["index.html"]
	return h
}

// Files lists the paths of the files served, relative to Path (tests).
func (h *Handler) Files() []string {
	var out []string
	for name := range h.files {
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// ServeHTTP serves one file.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	securityHeaders(hd)
	p := r.URL.EscapedPath()
	if p == strings.TrimSuffix(Path, "/") {
		http.Redirect(w, r, Path, http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" is not allowed here: the dashboard's files are read with GET",
			http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(p, Path)
	f := h.files[name]
	if !ok || f == nil {
		http.Error(w, "the dashboard has no file "+clip(p)+": open "+Path, http.StatusNotFound)
		return
	}
	// The files change with the binary only: a browser asks again each
	// time (no-cache) and gets a 304 while it has them.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", f.contentType)
	hd.Set("Content-Length", strconv.Itoa(len(f.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
}

// securityHeaders sets the headers of every answer, errors included.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// etagMatch tells whether an If-None-Match header names etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// clip shortens a path echoed in a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
