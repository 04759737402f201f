package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/client"
	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

func TestAnswerHookSeesTheAPIsOwnAnswers(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t).Start(t, nil)
	var got []*client.Answer
	c, err := client.New(h.URL, hosttest.Secret, client.WithAnswerHook(func(a *client.Answer) { got = append(got, a) }),
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	st, err := c.Submit(ctx, demo(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "0123456789abcdef01234567"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of an unknown job: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("the hook saw %d answers, want 3", len(got))
	}
	sub, get, miss := got[0], got[1], got[2]
	if sub.Method != http.MethodPost || sub.Path != "/jobs" || sub.Status != http.StatusAccepted {
		t.Errorf("submission answer: %s %s %d", sub.Method, sub.Path, sub.Status)
	}
	if get.Method != http.MethodGet || get.Path != "/jobs/"+st.ID || get.Status != http.StatusOK ||
		!strings.HasPrefix(get.Header.Get("Content-Type"), "application/json") {
		t.Errorf("get answer: %s %s %d %v", get.Method, get.Path, get.Status, get.Header)
	}
	// The body is the API's own: the same as a plain HTTP call's.
	var fromHook, direct map[string]any
	if err := json.Unmarshal(get.Body, &fromHook); err != nil {
		t.Fatalf("the hook's body is not JSON: %v: %s", err, get.Body)
	}
	h.Do(t, http.MethodGet, "/api/v1/jobs/"+st.ID, hosttest.Auth, nil).JSON(t, &direct)
	if fromHook["job"].(map[string]any)["id"] != direct["job"].(map[string]any)["id"] {
		t.Errorf("the hook's body %s is not the job's answer %v", get.Body, direct)
	}
	var body client.ErrorBody
	if miss.Status != http.StatusNotFound || json.Unmarshal(miss.Body, &body) != nil || body.Code == 0 || body.Message == "" {
		t.Errorf("error answer: %d %s", miss.Status, miss.Body)
	}
}

func TestCancelAndRetry(t *testing.T) {
	t.Parallel()
	// Backoffs of an hour: the only new run of a failed job is the retry
	// action's.
	h := hosttest.NewCluster(t).Start(t, func(cfg *config.Config) {
		cfg.Retry.BackoffBase = config.Duration(time.Hour)
		cfg.Retry.BackoffMax = config.Duration(time.Hour)
	})
	c, err := client.New(h.URL, hosttest.Secret, client.WithPollInterval(10*time.Millisecond),
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := c.Submit(ctx, demo(3600))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, st.ID, func(s *client.Stats) bool { return s.Status == client.Running }); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Wait(ctx, st.ID, client.Ended); err != nil || got.Status != client.Stopped {
		t.Fatalf("after Cancel: %+v, %v", got, err)
	}
	if err := c.Retry(ctx, st.ID); !errors.Is(err, client.ErrStatusMismatch) || !strings.Contains(err.Error(), string(client.Stopped)) {
		t.Fatalf("Retry of a Stopped job: %v, want a status mismatch naming the status", err)
	}
	failing := demo(0)
	failing.Parameters["fail"] = true
	f, err := c.Submit(ctx, failing)
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Wait(ctx, f.ID, func(s *client.Stats) bool { return s.Status == client.Error })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Retry(ctx, f.ID); err != nil {
		t.Fatalf("Retry of a job in Error: %v", err)
	}
	if got, err := c.Wait(ctx, f.ID, func(s *client.Stats) bool { return s.Revision > first.Revision && s.Status.Final() }); err != nil || got.Status != client.Error {
		t.Fatalf("no new run after Retry: %+v, %v", got, err)
	}
}
