package job_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
)

// FuzzValidID: an ID that passes can never name a path or a Redis key
// outside its place: it is 24 lowercase hex digits, optionally followed
// by @ and digits.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"0123456789abcdef01234567", "0123456789abcdef01234567@1700000000",
		"../../etc/passwd", "0123456789ABCDEF01234567", "0123456789abcdef01234567@", "@1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !job.ValidID(id) {
			return
		}
		base, at, _ := strings.Cut(id, "@")
		if len(base) != 24 || strings.Trim(base, "0123456789abcdef") != "" || strings.Trim(at, "0123456789") != "" {
			t.Fatalf("ValidID(%q) = true", id)
		}
	})
}

// FuzzCheck: any decoded submission is either accepted or refused with a
// *BadRequestError, never a panic or another error.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"job":{"name":"DEMO","parameters":{},"metadata":{"kind":"Generic"}}}`,
		`{"job":{"name":"DEMO","metadata":{"kind":"Scheduled","schedule_delay":5}}}`,
		`{"job":{"name":"DEMO","status_hook":"http://core/h","metadata":{"kind":"Periodic","cron_spec":"0 * * * * *"}}}`,
		`{"job":{"name":"DEMO","status_hook":"ftp://x","metadata":{"kind":"Generic","schedule_delay":3}}}`,
		`{}`, `{"job":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req job.Request
		if json.Unmarshal([]byte(body), &req) != nil {
			return
		}
		err := job.Check(req.Job)
		var bad *job.BadRequestError
		if err != nil && !errors.As(err, &bad) {
			t.Fatalf("Check(%s) = %T %v; want nil or a *BadRequestError", body, err, err)
		}
	})
}
