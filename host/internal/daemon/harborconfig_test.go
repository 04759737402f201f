package daemon_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/store"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// TestHarborConfigStartsAHost starts a real host from the config.yml that
// Harbor 2.x's installer writes (metric, reaper, a DB job logger, a Redis
// URL with ?idle_timeout_seconds=30), with the environment Harbor gives its
// job service container pointing it at the test Redis and plugins.
func TestHarborConfigStartsAHost(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t, "demo")
	vars := map[string]string{
		"CORE_SECRET": hosttest.Secret,
		// Harbor's installer writes the URL with this query; keep it.
		"JOB_SERVICE_POOL_REDIS_URL":       c.Redis.URL() + "/0?idle_timeout_seconds=30",
		"JOB_SERVICE_POOL_REDIS_NAMESPACE": c.Namespace,
		"BERTH_PLUGINS_DIR":                c.Plugins,
		"METRIC_NAMESPACE":                 "harbor",
		"METRIC_SUBSYSTEM":                 "jobservice",
		"JOBSERVICE_WEBHOOK_JOB_MAX_RETRY": "3",
		"MAX_JOB_DURATION_SECONDS":         "86400",
		"LOG_LEVEL":                        "debug",
	}
	cfg, err := config.Load(filepath.Join("..", "config", "testdata", "harbor-2.x.yml"), func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	// Harbor's job log directory is /var/log/jobs; the test writes elsewhere.
	dir := t.TempDir()
	for i := range cfg.JobLoggers {
		if l := &cfg.JobLoggers[i]; l.Name == config.LoggerFile {
			l.Settings[config.SettingBaseDir] = dir
			l.Sweeper.Settings[config.SettingWorkDir] = dir
		}
	}
	h := hosttest.StartWith(t, cfg)

	// Each warning is logged once, at start.
	log := h.Log.String()
	warnings := cfg.Warnings()
	if len(warnings) != 3 {
		t.Errorf("Warnings() = %q, want the 3 of Harbor's file", warnings)
	}
	for _, w := range warnings {
		if n := strings.Count(log, w); n != 1 {
			t.Errorf("the host logged %d times, want once: %s\nlog:\n%s", n, w, log)
		}
	}
	// Harbor's file enables its metrics: they are served.
	for _, want := range []string{"runs as the REDIS logger", "idle_timeout_seconds=30", "serving metrics", "reaper.max_dangling_hours (168)"} {
		if !strings.Contains(log, want) {
			t.Errorf("the host log lacks %q", want)
		}
	}

	// GET /api/v1/config shows the idle timeout that is in force: the URL's.
	var pc job.PoolConfig
	r := h.Do(t, http.MethodGet, "/api/v1/config", hosttest.Auth, nil)
	r.JSON(t, &pc)
	if r.Status != http.StatusOK || pc.RedisPoolConfig.IdleTimeoutSecond != 30 || pc.RedisPoolConfig.Namespace != c.Namespace {
		t.Errorf("GET /api/v1/config = %d %s, want idle timeout 30 and namespace %s", r.Status, r.Body, c.Namespace)
	}

	// A job runs, and its log is kept in Redis (the DB logger's stand-in),
	// where any host can read it.
	st := h.Submit(t, "DEMO", map[string]any{"image": "demo", "hold_seconds": 0, "log_lines": 2}, nil)
	h.WaitStatus(t, st.ID, job.Success, wait)
	if text := h.LogText(t, st.ID); !strings.Contains(text, "log line 2 of 2") {
		t.Errorf("job log:\n%s", text)
	}
	conn := c.Redis.Pool(t).Get()
	defer conn.Close()
	n, err := redis.Int(conn.Do("STRLEN", store.NewKeys(c.Namespace).JobLog(st.ID)))
	if err != nil || n == 0 {
		t.Errorf("the job log in Redis: %d bytes, %v; want it there", n, err)
	}
}
