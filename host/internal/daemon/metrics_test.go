package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// scrape reads a host's metrics.
func scrape(t *testing.T, h *hosttest.Host) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s%s", h.MetricsAddr(), h.Config.Metric.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// value is the value of the metric of fam with the labels given (name,
// value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, fam string, labels ...string) (float64, bool) {
	f, ok := fams[fam]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Summary != nil:
			return float64(m.GetSummary().GetSampleCount()), true
		}
	}
	return 0, false
}

// The metrics endpoint serves Harbor's job service metrics, counted from
// the funnel's events, and the cluster's backlog read from Redis.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := hosttest.NewCluster(t, "demo").Start(t, func(c *config.Config) {
		c.Metric = config.Metric{Enabled: true, Path: "/metrics", Port: 9999, Namespace: "harbor", Subsystem: "jobservice"}
	})
	var ok []string
	for i := 0; i < 3; i++ {
		ok = append(ok, h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0}), nil).ID)
	}
	held := h.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 60}), nil).ID
	for _, id := range ok {
		h.WaitStatus(t, id, job.Success, wait)
	}
	h.WaitStatus(t, held, job.Running, wait)
	queued := h.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 3600}).ID

	fams := scrape(t, h)
	if v, _ := value(fams, "harbor_jobservice_info", "workers", "4"); v != 1 {
		t.Errorf("harbor_jobservice_info{workers=4} = %v; want 1", v)
	}
	if v, _ := value(fams, "harbor_jobservice_task_total", "type", "DEMO", "status", "Success"); v != 3 {
		t.Errorf("task_total{DEMO,Success} = %v; want 3", v)
	}
	if n, _ := value(fams, "harbor_jobservice_task_process_time_seconds", "type", "DEMO", "status", "Success"); n != 3 {
		t.Errorf("task_process_time_seconds{DEMO,Success} has %v samples; want 3", n)
	}
	for _, c := range []struct {
		status job.Status
		want   float64
	}{{job.Success, 3}, {job.Running, 1}, {job.Scheduled, 1}} {
		if v, _ := value(fams, "harbor_jobservice_jobs", "type", "DEMO", "status", string(c.status)); v != c.want {
			t.Errorf("jobs{DEMO,%s} = %v; want %v", c.status, v, c.want)
		}
	}
	if v, _ := value(fams, "harbor_jobservice_scheduled_entries"); v != 1 {
		t.Errorf("scheduled_entries = %v; want 1 (%s)", v, queued)
	}
	if v, _ := value(fams, "harbor_jobservice_plugin_up", "plugin", "demo", "status", "up"); v != 1 {
		t.Errorf("plugin_up{demo,up} = %v; want 1", v)
	}
	if v, _ := value(fams, "harbor_jobservice_job_events_total", "type", "DEMO", "reason", string(job.Succeeded)); v != 3 {
		t.Errorf("job_events_total{DEMO,succeeded} = %v; want 3", v)
	}
	if v, ok := value(fams, "harbor_jobservice_scrape_errors"); !ok || v != 0 {
		t.Errorf("scrape_errors = %v (%v); want 0", v, ok)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("the Go runtime metrics are missing")
	}

	// A stop is counted as Stopped once the run ends.
	h.Action(t, held, "stop")
	h.WaitStatus(t, held, job.Stopped, wait)
	deadline := time.Now().Add(wait)
	for {
		v, _ := value(scrape(t, h), "harbor_jobservice_task_total", "type", "DEMO", "status", "Stopped")
		if v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task_total{DEMO,Stopped} = %v; want 1", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Harbor's text format names.
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", h.MetricsAddr()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}
