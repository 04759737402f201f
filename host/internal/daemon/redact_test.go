package daemon_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// Secret-looking parameters reach the plugin whole, and are redacted
// wherever the service shows them: the submission's answer, the job's
// stats, listings and the status hook's body; the service log never holds
// them.
func TestSecretParametersAreRedactedEverywhereButInThePlugin(t *testing.T) {
	t.Parallel()
	secrets := []string{"pw-top-4711", "tok-0815", "basic-auth-42", "harbor-secret-99"}
	params := map[string]any{
		"registry_password": secrets[0],
		"nested":            map[string]any{"token": secrets[1], "url": "http://example.invalid"},
		// Harbor sends a scan's request and a replication's resources as
		// JSON strings.
		"scanRequest":  fmt.Sprintf(`{"registry":{"url":"http://r","authorization":%q}}`, secrets[2]),
		"dst_resource": map[string]any{"registry": map[string]any{"credential": map[string]any{"access_key": "u", "access_secret": secrets[3]}}},
	}
	raw, _ := json.Marshal(params)
	wantDigest := fmt.Sprintf("sha256=%x", sha256.Sum256(raw))

	rcv := newReceiver(t)
	h := hosttest.NewCluster(t, "fixture").Start(t, nil)
	r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, withHook("DIGEST", params, rcv.url("/hook"), nil))
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	shown := []string{"the submission's answer: " + string(r.Body)}
	st := r.Stats(t)
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	if done.CheckIn != wantDigest {
		t.Errorf("the plugin checked in %q; want %q (its parameters whole)", done.CheckIn, wantDigest)
	}
	rcv.waitFor(t, st.ID, string(job.Success), wait)

	get := h.Do(t, http.MethodGet, "/api/v1/jobs/"+st.ID, hosttest.Auth, nil)
	list := h.Do(t, http.MethodGet, "/api/v1/jobs?name=DIGEST", hosttest.Auth, nil)
	if !strings.Contains(string(list.Body), st.ID) {
		t.Fatalf("the listing lacks the job: %s", list.Body)
	}
	shown = append(shown, "GET: "+string(get.Body), "the listing: "+string(list.Body))
	rcv.mu.Lock()
	for _, ev := range rcv.events {
		b, _ := json.Marshal(ev)
		shown = append(shown, "a hook event: "+string(b))
	}
	rcv.mu.Unlock()
	shown = append(shown, "the service log: "+h.Log.String())
	for _, s := range shown {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows in %s", secret, s)
			}
		}
	}
	if !strings.Contains(string(get.Body), `"registry_password":"[redacted]"`) || !strings.Contains(string(get.Body), `"url":"http://example.invalid"`) {
		t.Errorf("GET does not show the parameters redacted (and the rest as sent): %s", get.Body)
	}
}
