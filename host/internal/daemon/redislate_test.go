package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/daemon"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

// A host started before its Redis waits for it, with backoff, instead of
// exiting; meanwhile its API answers 503 saying why, and once Redis is up
// the host serves.
func TestAHostStartedBeforeItsRedisWaitsForIt(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := hosttest.NewCluster(t, "demo")
	c.Redis = srv
	cfg := c.Config(t)
	srv.Kill()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &procs.Buffer{}
	d := daemon.New(daemon.Options{Config: cfg, Listener: l,
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- d.Start(ctx) }()
	t.Cleanup(d.Stop)
	url := "http://" + l.Addr().String()

	get := func() (int, string) {
		resp, err := http.Get(url + "/api/v1/stats")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get()
		if code == http.StatusServiceUnavailable && strings.Contains(body, "Redis cannot be reached yet") {
			var e struct {
				Code int `json:"code"`
			}
			if json.Unmarshal([]byte(body), &e) != nil || e.Code != 10004 {
				t.Fatalf("the 503 is not Harbor's error body: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /stats = %d %s; want a 503 that says the host waits for Redis\n%s", code, body, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-started:
		t.Fatalf("Start returned while Redis was down: %v", err)
	default:
	}
	if !strings.Contains(logs.String(), "Redis cannot be reached; the host waits for it") {
		t.Errorf("the host log does not say it waits for Redis:\n%s", logs.String())
	}

	srv.Restart(t)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("Start after Redis came up: %v\n%s", err, logs.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("the host did not start within 45s of Redis coming up\n%s", logs.String())
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("GET /stats once started = %d %s", code, body)
	}
	body, _ := json.Marshal(hosttest.Request("DEMO", demo(map[string]any{"hold_seconds": 0}), nil))
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/jobs", strings.NewReader(string(body)))
	req.Header.Set("Authorization", hosttest.Auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a submission once started = %d; want 202", resp.StatusCode)
	}
}

// A Redis that answers but refuses (a wrong password) is an error at
// once: waiting would not mend it.
func TestAWrongRedisPasswordFailsTheStartAtOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithPassword("right-one"))
	c := hosttest.NewCluster(t, "demo")
	cfg := c.Config(t)
	cfg.WorkerPool.RedisPool.RedisURL = "redis://:wrong-one@" + srv.Addr()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := daemon.New(daemon.Options{Config: cfg, Listener: l})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = d.Start(ctx)
	if err == nil {
		d.Stop()
		t.Fatal("Start with a wrong Redis password succeeded")
	}
	if time.Since(start) > 10*time.Second || strings.Contains(err.Error(), "wrong-one") {
		t.Errorf("Start = %v after %s; want a prompt error without the password", err, time.Since(start))
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("the API still listens after a failed start")
	}
}
