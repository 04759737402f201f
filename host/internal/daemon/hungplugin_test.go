package daemon_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// hungPlugin is one entry of the "plugins" field of GET /stats.
type hungPlugin struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	PID    int    `json:"pid"`
}

func hungStats(t *testing.T, h *hosttest.Host) []hungPlugin {
	t.Helper()
	r := h.Do(t, http.MethodGet, "/api/v1/stats", "", nil)
	var body struct {
		Plugins []hungPlugin `json:"plugins"`
	}
	r.JSON(t, &body)
	return body.Plugins
}

// A plugin that stops answering (SIGSTOP) holds neither submissions nor
// its jobs: GET /stats reports it, it is killed and restarted, its running
// job fails by its rules, and the host serves the job type again.
func TestAHungPluginIsReportedInStatsAndRestarted(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t, "demo").Start(t, func(c *config.Config) {
		c.Plugins.ProbeEvery = config.Duration(100 * time.Millisecond)
		c.Plugins.ProbeTimeout = config.Duration(200 * time.Millisecond)
		c.Plugins.ProbeFailures = 2
		c.Plugins.RestartBackoffMax = config.Duration(2 * time.Second)
	})
	before := hungStats(t, h)
	if len(before) != 1 || before[0].Name != "demo" || before[0].Status != "up" || before[0].PID == 0 {
		t.Fatalf("plugins in /stats at start: %+v", before)
	}
	running := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 60}), nil)
	h.WaitStatus(t, running.ID, job.Running, wait)
	if err := syscall.Kill(before[0].PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(before[0].PID, syscall.SIGCONT) //nolint:errcheck // gone by then

	// A submission is answered, bounded by the call timeout.
	start := time.Now()
	h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("DEMO", demo(nil), nil))
	if time.Since(start) > 15*time.Second {
		t.Errorf("a submission to the hung plugin took %s", time.Since(start))
	}

	sawUnresponsive, restarted := false, false
	deadline := time.Now().Add(30 * time.Second)
	for !restarted {
		for _, p := range hungStats(t, h) {
			if p.Status == "unresponsive" {
				sawUnresponsive = true
			}
			if p.Status == "up" && p.PID != before[0].PID {
				restarted = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hung plugin was not restarted: /stats %+v", hungStats(t, h))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawUnresponsive && !strings.Contains(h.Log.String(), "plugin stopped answering") {
		t.Error("the hung plugin was reported neither in /stats nor in the log")
	}
	// The job it ran does not stay Running: it fails and is retried on
	// the new process.
	h.Wait(t, running.ID, 30*time.Second, "a new run", func(s *job.Stats) bool { return s.Revision > running.Revision })
	ok := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), nil)
	h.WaitStatus(t, ok.ID, job.Success, wait)
	if b, _ := json.Marshal(hungStats(t, h)); !strings.Contains(string(b), `"status":"up"`) {
		t.Errorf("plugins after the restart: %s", b)
	}
}
