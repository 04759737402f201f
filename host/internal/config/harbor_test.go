package config

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// harborWarnings are the warnings of testdata/harbor-2.x.yml, in order.
var harborWarnings = []string{
	"job_loggers[2]: Harbor's DB job logger (job logs in Harbor's database) runs as the REDIS logger: " +
		"job logs are kept in Redis, where every host can read them, and expire with the job's stats; its sweeper (1 day) does not apply",
	"worker_pool.redis_pool.idle_timeout_second is 3600 but worker_pool.redis_pool.redis_url says idle_timeout_seconds=30; " +
		"the URL wins, as in Harbor: idle Redis connections are closed after 30s",
	"reaper.max_dangling_hours (168) has no effect: it bounds the executions kept in Harbor core's database, which Berth does not have; " +
		"the jobs Berth runs are bounded by reaper.max_job_duration (24h)",
}

// wantHarbor is testdata/harbor-2.x.yml as a Config, with CORE_SECRET set.
func wantHarbor() *Config {
	c := Default()
	c.Protocol = "http"
	c.Port = 8080
	c.WorkerPool = WorkerPool{Workers: 10, Backend: "redis", RedisPool: RedisPool{
		RedisURL:          "redis://redis:6379/2?idle_timeout_seconds=30",
		Namespace:         "harbor_job_service_namespace",
		IdleTimeoutSecond: 30, // the URL's, not the file's 3600
	}}
	c.JobLoggers = []Logger{
		{Name: "STD_OUTPUT", Level: "INFO", Settings: map[string]any{}},
		{
			Name: "FILE", Level: "INFO", Settings: map[string]any{"base_dir": "/var/log/jobs"},
			Sweeper: &Sweeper{Duration: 1, Settings: map[string]any{"work_dir": "/var/log/jobs"}},
		},
		// DB runs as REDIS, without the sweeper.
		{Name: "REDIS", Level: "INFO", Settings: map[string]any{"max_bytes": 1 << 20}},
	}
	c.Loggers = []Logger{{Name: "STD_OUTPUT", Level: "INFO", Settings: map[string]any{}}}
	c.Secret = "s3cr3t"
	c.Reaper = Reaper{
		Interval: Duration(time.Minute), DeadAfter: Duration(30 * time.Second),
		MaxJobDuration: Duration(24 * time.Hour), MaxUpdateHours: 24, MaxDanglingHours: 168,
	}
	c.Metric = Metric{Enabled: true, Path: "/metrics", Port: 9090, Namespace: "harbor", Subsystem: "jobservice"}
	c.LoadWarnings = harborWarnings[:2]
	return c
}

// harborContainerEnv is every variable that Harbor 2.x gives its job
// service container (make/photon/prepare/templates/jobservice/env.jinja
// with internal TLS, metric, trace and cache on; the Helm chart's
// jobservice env ConfigMap and Secret), with made-up values.
var harborContainerEnv = []string{
	"CORE_SECRET", "s3cr3t",
	"JOBSERVICE_SECRET", "js-s3cret",
	"CORE_URL", "http://core:8080",
	"TOKEN_SERVICE_URL", "http://core:8080/service/token",
	"REGISTRY_URL", "http://registry:5000",
	"REGISTRY_CONTROLLER_URL", "http://registryctl:8080",
	"REGISTRY_CREDENTIAL_USERNAME", "harbor_registry_user",
	"REGISTRY_CREDENTIAL_PASSWORD", "reg-s3cret",
	"REGISTRY_HTTP_CLIENT_TIMEOUT", "30",
	"JOBSERVICE_WEBHOOK_JOB_MAX_RETRY", "3",
	"JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT", "3",
	"INTERNAL_TLS_ENABLED", "true",
	"INTERNAL_TLS_TRUST_CA_PATH", "/harbor_cust_cert/harbor_internal_ca.crt",
	"INTERNAL_TLS_KEY_PATH", "/etc/harbor/ssl/job_service.key",
	"INTERNAL_TLS_CERT_PATH", "/etc/harbor/ssl/job_service.crt",
	"INTERNAL_VERIFY_CLIENT_CERT", "true",
	"HTTP_PROXY", "http://proxy:3128",
	"HTTPS_PROXY", "http://proxy:3128",
	"NO_PROXY", "core,registry,127.0.0.1",
	"METRIC_NAMESPACE", "harbor",
	"METRIC_SUBSYSTEM", "jobservice",
	"TRACE_ENABLED", "true",
	"TRACE_SERVICE_NAME", "harbor-jobservice",
	"TRACE_SAMPLE_RATE", "1",
	"TRACE_NAMESPACE", "",
	"TRACE_ATTRIBUTES", `{"application":"harbor"}`,
	"TRACE_JAEGER_ENDPOINT", "http://jaeger:14268/api/traces",
	"TRACE_JAEGER_USERNAME", "",
	"TRACE_JAEGER_PASSWORD", "",
	"TRACE_JAEGER_AGENT_HOSTNAME", "",
	"TRACE_JAEGER_AGENT_PORT", "",
	"TRACE_OTEL_ENDPOINT", "otel:4318",
	"TRACE_OTEL_URL_PATH", "/v1/traces",
	"TRACE_OTEL_COMPRESSION", "false",
	"TRACE_OTEL_TIMEOUT", "10",
	"TRACE_OTEL_INSECURE", "true",
	"_REDIS_URL_CORE", "redis://redis:6379/0?idle_timeout_seconds=30",
	"CACHE_ENABLED", "true",
	"CACHE_EXPIRE_HOURS", "24",
	"MAX_JOB_DURATION_SECONDS", "86400",
	"LOG_LEVEL", "info",
}

func TestHarborFile(t *testing.T) {
	t.Parallel()

	t.Run("Golden", func(t *testing.T) {
		t.Parallel()
		got, err := Load("testdata/harbor-2.x.yml", env("CORE_SECRET", "s3cr3t"))
		if err != nil {
			t.Fatal(err)
		}
		assertConfig(t, got, wantHarbor())
		if w := got.Warnings(); !slices.Equal(w, harborWarnings) {
			t.Errorf("Warnings():\n got %q\nwant %q", w, harborWarnings)
		}
	})

	t.Run("WithTheContainersEnv", func(t *testing.T) {
		// Every variable Harbor's job service container gets: those Berth
		// honours change what they should, the others change nothing.
		t.Parallel()
		got, err := Load("testdata/harbor-2.x.yml", env(harborContainerEnv...))
		if err != nil {
			t.Fatal(err)
		}
		want := wantHarbor()
		want.CoreURL = "http://core:8080"
		assertConfig(t, got, want)
		if w := got.Warnings(); !slices.Equal(w, harborWarnings) {
			t.Errorf("Warnings():\n got %q\nwant %q", w, harborWarnings)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		// What Load made of Harbor's file, written out, loads to the same
		// settings, with nothing left to warn about but what stays unused.
		t.Parallel()
		first, err := Load("testdata/harbor-2.x.yml", env("CORE_SECRET", "s3cr3t"))
		if err != nil {
			t.Fatal(err)
		}
		second, err := Load(writeYAML(t, marshal(t, first)), env("CORE_SECRET", "s3cr3t"))
		if err != nil {
			t.Fatal(err)
		}
		first.LoadWarnings = nil
		if len(first.PluginConfig) == 0 && len(second.PluginConfig) == 0 {
			second.PluginConfig = first.PluginConfig // "plugin_config: {}" reads back as an empty map, not nil
		}
		assertConfig(t, second, first)
	})
}

// TestHarborEnvNames lays each variable of Harbor's job service container
// over testdata/harbor.yml. (How they meet the Redis URL's
// idle_timeout_seconds and reaper.max_update_hours is in
// TestHarborIdleTimeout and TestHarborReaperHours.)
func TestHarborEnvNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        map[string]string // flattened keys that change, and to what; nil: nothing changes
	}{
		{"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "120", map[string]string{"worker_pool.redis_pool.idle_timeout_second": "120 (int)"}},
		{"JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "120", map[string]string{"worker_pool.redis_pool.idle_timeout_second": "120 (int)"}},
		{"MAX_JOB_DURATION_SECONDS", "259200", map[string]string{"reaper.max_job_duration": "72h"}},
		{"LOG_LEVEL", "debug", map[string]string{"loggers[0].level": "DEBUG (string)"}},
		{"METRIC_NAMESPACE", "registry", map[string]string{"metric.namespace": "registry (string)"}},
		{"METRIC_SUBSYSTEM", "js", map[string]string{"metric.subsystem": "js (string)"}},
		{"CORE_URL", "http://core:8080", map[string]string{"core_url": "http://core:8080 (string)"}},
		{"CORE_SECRET", "s3cr3t", map[string]string{"Secret": "s3cr3t (string)"}},
		// Read by the plugins (WEBHOOK, SLACK) or unused: config leaves
		// them alone and does not refuse them.
		{"JOBSERVICE_WEBHOOK_JOB_MAX_RETRY", "10", nil},
		{"JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT", "abc", nil},
		{"HTTP_PROXY", "http://proxy:3128", nil},
		{"HTTPS_PROXY", "http://proxy:3128", nil},
		{"NO_PROXY", "core", nil},
		{"JOBSERVICE_SECRET", "x", nil},
		{"INTERNAL_TLS_ENABLED", "true", nil},
		{"TRACE_ENABLED", "true", nil},
		{"CACHE_ENABLED", "true", nil},
		{"_REDIS_URL_CORE", "redis://redis:6379/0", nil},
	} {
		t.Run(envTestName(strings.TrimPrefix(tc.name, "_"), tc.value), func(t *testing.T) {
			t.Parallel()
			base, err := Load("testdata/harbor.yml", nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Load("testdata/harbor.yml", env(tc.name, tc.value))
			if err != nil {
				t.Fatalf("Load with %s=%q: %v", tc.name, tc.value, err)
			}
			want := flatten(base)
			maps.Copy(want, tc.want)
			g := flatten(got)
			for _, k := range slices.Sorted(maps.Keys(want)) {
				if g[k] != want[k] {
					t.Errorf("%s: got %q, want %q", k, g[k], want[k])
				}
			}
		})
	}

	t.Run("AliasesThatDisagree", func(t *testing.T) {
		t.Parallel()
		_, err := Load("", env("JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "30", "JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "60"))
		want := "worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND, " +
			`JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT): JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND="30" and ` +
			`JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT="60" disagree; set only JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND ` +
			"(JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT is its older name)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v\nwant an error containing %s", err, want)
		}
	})

	t.Run("BadValueNamesTheAliasUsed", func(t *testing.T) {
		t.Parallel()
		_, err := Load("", env("JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "-2"))
		want := "worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT): must be at least 0, got -2"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v\nwant an error containing %s", err, want)
		}
	})
}

// marshal writes c as YAML.
func marshal(t *testing.T, c *Config) string {
	t.Helper()
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// loadHarbor loads body with env kv and returns the config and its warnings.
func loadHarbor(t *testing.T, body string, kv ...string) (*Config, []string, error) {
	t.Helper()
	c, err := Load(writeYAML(t, body), env(append([]string{"CORE_SECRET", "s"}, kv...)...))
	if err != nil {
		return nil, nil, err
	}
	return c, c.Warnings(), nil
}

func TestHarborDBLogger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		want       []Logger
		warning    string
	}{
		{"WithSweeper", "job_loggers:\n  - name: DB\n    level: WARNING\n    sweeper:\n      duration: 14\n",
			[]Logger{{Name: "REDIS", Level: "WARNING", Settings: map[string]any{"max_bytes": 1 << 20}}},
			"job_loggers[0]: Harbor's DB job logger (job logs in Harbor's database) runs as the REDIS logger: job logs are kept in Redis, " +
				"where every host can read them, and expire with the job's stats; its sweeper (14 days) does not apply"},
		{"LowerCaseWithoutSweeper", "job_loggers:\n  - name: FILE\n  - name: db\n",
			[]Logger{
				{Name: "FILE", Level: "INFO", Settings: map[string]any{"base_dir": "/tmp/berth/job_logs"}},
				{Name: "REDIS", Level: "INFO", Settings: map[string]any{"max_bytes": 1 << 20}},
			},
			"job_loggers[1]: Harbor's DB job logger (job logs in Harbor's database) runs as the REDIS logger: job logs are kept in Redis, " +
				"where every host can read them, and expire with the job's stats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, warnings, err := loadHarbor(t, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			want.JobLoggers = tc.want
			want.Secret = "s"
			want.LoadWarnings = []string{tc.warning}
			assertConfig(t, c, want)
			if !slices.Equal(warnings, []string{tc.warning}) {
				t.Errorf("Warnings():\n got %q\nwant %q", warnings, []string{tc.warning})
			}
		})
	}

	t.Run("BesideREDIS", func(t *testing.T) {
		t.Parallel()
		_, _, err := loadHarbor(t, "job_loggers:\n  - name: REDIS\n  - name: DB\n")
		if err == nil || !strings.Contains(err.Error(), "job_loggers[1].name: REDIS is already configured at job_loggers[0]; keep one") {
			t.Errorf("Load = %v, want the second REDIS refused", err)
		}
	})

	t.Run("NotAServiceLogger", func(t *testing.T) {
		t.Parallel()
		_, _, err := loadHarbor(t, "loggers:\n  - name: DB\n")
		if err == nil || !strings.Contains(err.Error(), `loggers[0].name: unknown logger "DB"`) {
			t.Errorf("Load = %v, want DB refused among the service's loggers", err)
		}
	})
}

func TestHarborReaperHours(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		env        []string
		want       time.Duration // reaper.max_job_duration
		warning    string        // "" for none
	}{
		{"UpdateHoursAlone", "reaper:\n  max_update_hours: 72\n", nil, 72 * time.Hour, ""},
		{"UpdateHoursZeroLeavesTheDefault", "reaper:\n  max_update_hours: 0\n", nil, 24 * time.Hour, ""},
		{"BothAgree", "reaper:\n  max_update_hours: 48\n  max_job_duration: 48h\n", nil, 48 * time.Hour, ""},
		{"BerthsKeyAlone", "reaper:\n  max_job_duration: 36h\n", nil, 36 * time.Hour, ""},
		{"BelowHarborsFloor", "reaper:\n  max_update_hours: 12\n", nil, 12 * time.Hour,
			"reaper.max_update_hours is 12: a running job that shows no progress for 12h is marked Error, " +
				"where Harbor would wait 24h (it raises smaller values to that)"},
		{"EnvWins", "reaper:\n  max_update_hours: 48\n", []string{"MAX_JOB_DURATION_SECONDS", "86400"}, 24 * time.Hour,
			"env MAX_JOB_DURATION_SECONDS (24h) wins over reaper.max_update_hours (48): Berth has one bound for both, " +
				"reaper.max_job_duration, now 24h"},
		{"EnvAgrees", "reaper:\n  max_update_hours: 48\n", []string{"MAX_JOB_DURATION_SECONDS", "172800"}, 48 * time.Hour, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, warnings, err := loadHarbor(t, tc.body, tc.env...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Reaper.MaxJobDuration.Std(); got != tc.want {
				t.Errorf("reaper.max_job_duration = %s, want %s", got, tc.want)
			}
			var want []string
			if tc.warning != "" {
				want = []string{tc.warning}
			}
			if !slices.Equal(warnings, want) {
				t.Errorf("Warnings():\n got %q\nwant %q", warnings, want)
			}
		})
	}

	t.Run("BothDisagree", func(t *testing.T) {
		t.Parallel()
		_, _, err := loadHarbor(t, "reaper:\n  max_job_duration: 24h\n  max_update_hours: 48\n")
		want := "reaper.max_update_hours: is 48 (48h) but reaper.max_job_duration is 24h; they are one setting (Harbor's name and Berth's): keep one"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v\nwant an error containing %s", err, want)
		}
	})

	t.Run("BothDisagreeThroughAnAnchor", func(t *testing.T) {
		t.Parallel()
		_, _, err := loadHarbor(t, "retry:\n  backoff_max: &d 36h\nreaper:\n  max_job_duration: *d\n  max_update_hours: 48\n")
		want := "reaper.max_update_hours: is 48 (48h) but reaper.max_job_duration is 36h"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v\nwant an error containing %s", err, want)
		}
	})

	t.Run("DanglingHoursWarn", func(t *testing.T) {
		t.Parallel()
		c, warnings, err := loadHarbor(t, "reaper:\n  max_dangling_hours: 200\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"reaper.max_dangling_hours (200) has no effect: it bounds the executions kept in Harbor core's database, " +
			"which Berth does not have; the jobs Berth runs are bounded by reaper.max_job_duration (24h)"}
		if c.Reaper.MaxDanglingHours != 200 || !slices.Equal(warnings, want) {
			t.Errorf("max_dangling_hours = %d, Warnings():\n got %q\nwant %q", c.Reaper.MaxDanglingHours, warnings, want)
		}
	})

	t.Run("NegativeIsRefused", func(t *testing.T) {
		t.Parallel()
		_, _, err := loadHarbor(t, "reaper:\n  max_update_hours: -1\n  max_dangling_hours: -1\n")
		for _, want := range []string{
			"reaper.max_update_hours: must be between 0 and 1000000, got -1",
			"reaper.max_dangling_hours: must be between 0 and 1000000, got -1",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load = %v\nwant an error containing %s", err, want)
			}
		}
	})
}

func TestHarborIdleTimeout(t *testing.T) {
	t.Parallel()
	const harborURL = "redis://redis:6379/2?idle_timeout_seconds=30"
	for _, tc := range []struct {
		name, body string
		env        []string
		want       int
		warning    string
	}{
		{"URLAlone", "worker_pool:\n  redis_pool:\n    redis_url: " + harborURL + "\n", nil, 30, ""},
		{"URLFromEnv", "", []string{"JOB_SERVICE_POOL_REDIS_URL", harborURL}, 30, ""},
		{"URLAndFileAgree", "worker_pool:\n  redis_pool:\n    redis_url: " + harborURL + "\n    idle_timeout_second: 30\n", nil, 30, ""},
		{"URLWinsOverTheFile", "worker_pool:\n  redis_pool:\n    redis_url: " + harborURL + "\n    idle_timeout_second: 600\n", nil, 30,
			"worker_pool.redis_pool.idle_timeout_second is 600 but worker_pool.redis_pool.redis_url says idle_timeout_seconds=30; " +
				"the URL wins, as in Harbor: idle Redis connections are closed after 30s"},
		{"URLWinsOverTheEnv", "worker_pool:\n  redis_pool:\n    redis_url: " + harborURL + "\n",
			[]string{"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "90"}, 30,
			"worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND) is 90 but " +
				"worker_pool.redis_pool.redis_url says idle_timeout_seconds=30; the URL wins, as in Harbor: idle Redis connections are closed after 30s"},
		{"ZeroNeverCloses", "worker_pool:\n  redis_pool:\n    redis_url: redis://redis/2?idle_timeout_seconds=0\n    idle_timeout_second: 3600\n", nil, 0,
			"worker_pool.redis_pool.idle_timeout_second is 3600 but worker_pool.redis_pool.redis_url says idle_timeout_seconds=0; " +
				"the URL wins, as in Harbor: idle Redis connections are never closed"},
		{"NoQueryKeepsTheFile", "worker_pool:\n  redis_pool:\n    redis_url: redis://redis/2\n    idle_timeout_second: 600\n", nil, 600, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, warnings, err := loadHarbor(t, tc.body, tc.env...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.WorkerPool.RedisPool.IdleTimeoutSecond; got != tc.want {
				t.Errorf("idle_timeout_second = %d, want %d", got, tc.want)
			}
			var want []string
			if tc.warning != "" {
				want = []string{tc.warning}
			}
			if !slices.Equal(warnings, want) {
				t.Errorf("Warnings():\n got %q\nwant %q", warnings, want)
			}
		})
	}

	t.Run("BadQueryIsRefused", func(t *testing.T) {
		t.Parallel()
		_, _, err := loadHarbor(t, "worker_pool:\n  redis_pool:\n    redis_url: redis://:pw@redis/2?idle_timeout_seconds=30&pool=9\n")
		want := `worker_pool.redis_pool.redis_url (line 3): "redis://:xxxxx@redis/2?idle_timeout_seconds=30&pool=9": unknown query parameter "pool"`
		if err == nil || !strings.Contains(strings.Replace(err.Error(), " (line 3)", "", 1), strings.Replace(want, " (line 3)", "", 1)) {
			t.Errorf("Load = %v\nwant an error containing %s", err, want)
		}
	})
}

func TestHarborMetric(t *testing.T) {
	t.Parallel()
	c, warnings, err := loadHarbor(t, "bind_address: 10.0.0.5\nmetric:\n  enabled: true\n  path: /prom\n  port: 9191\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("Warnings() = %q; want none: the metrics are served", warnings)
	}
	if c.Metric != (Metric{Enabled: true, Path: "/prom", Port: 9191, Namespace: "harbor", Subsystem: "jobservice"}) {
		t.Errorf("metric = %+v", c.Metric)
	}

	t.Run("DisabledSaysNothing", func(t *testing.T) {
		t.Parallel()
		_, warnings, err := loadHarbor(t, "metric:\n  enabled: false\n  port: 9090\n")
		if err != nil || len(warnings) != 0 {
			t.Errorf("Load = %v, Warnings() = %q; want no error and no warning", err, warnings)
		}
	})
}
