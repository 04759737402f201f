package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/api"
	"github.com/berth-dev/berth/host/internal/job"
)

// FuzzRequests: no request body, path or query makes the API panic or
// answer a server error (the backend never fails here), and every error
// answer is Harbor's JSON error body.
func FuzzRequests(f *testing.F) {
	for _, s := range []struct{ path, body string }{
		{"/api/v1/jobs", `{"job":{"name":"DEMO","parameters":{"a":[1,{"b":null}]},"metadata":{"kind":"Generic","unique":true}}}`},
		{"/api/v1/jobs", `{"job":{"name":"DEMO","metadata":{"kind":"Scheduled","schedule_delay":18446744073709551615}}}`},
		{"/api/v1/jobs", `{"job":` + strings.Repeat("[", 100)},
		{"/api/v1/jobs/0123456789abcdef01234567", `{"action":"stop"}`},
		{"/api/v1/jobs/0123456789abcdef01234567@17", `{"action":7}`},
		{"/api/v1/jobs?kind=Generic&status=Running&page_size=0&cursor=12", ``},
		{"/api/v1/jobs/..%2f..%2fetc/log", ``},
	} {
		f.Add(s.path, s.body)
	}
	fake := &fakeBackend{entered: make(chan struct{}), stats: pendingStats(),
		page: &job.Page{Jobs: []*job.Stats{pendingStats()}}, log: []byte("log"),
		pools: []*job.WorkerPool{{WorkerPoolID: "p", Status: job.PoolHealthy}}}
	h := api.New(fake, api.Options{Secret: secret, Logger: hclog.NewNullLogger()})
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Authorization", "Harbor-Secret "+secret)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
				t.Fatalf("%s %q with %q = %d %s", method, path, body, rec.Code, rec.Body)
			}
			if rec.Code >= 400 {
				var e struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == 0 || e.Message == "" {
					t.Fatalf("%s %q: %d answered %q, not Harbor's error body", method, path, rec.Code, rec.Body)
				}
			}
		}
	})
}
