package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	readable := okFile(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string // the whole message of the one problem expected, or its start
	}{
		{"Protocol", func(c *Config) { c.Protocol = "HTTP" }, `protocol: must be "http" or "https", got "HTTP"`},
		{"PortZero", func(c *Config) { c.Port = 0 }, `port: must be between 1 and 65535, got 0`},
		{"PortTooLarge", func(c *Config) { c.Port = 65536 }, `port: must be between 1 and 65535, got 65536`},
		{"BindAddressWithPort", func(c *Config) { c.BindAddress = "127.0.0.1:9444" },
			`bind_address: must be an address without a port (the port is port, env JOB_SERVICE_PORT), got "127.0.0.1:9444"`},
		{"BindAddressIPv6WithPort", func(c *Config) { c.BindAddress = "[::1]:9444" },
			`bind_address: must be an address without a port (the port is port, env JOB_SERVICE_PORT), got "[::1]:9444"`},
		{"BindAddressHostNameWithPort", func(c *Config) { c.BindAddress = "localhost:9444" },
			`bind_address: must be an address without a port`},
		{"BindAddressURL", func(c *Config) { c.BindAddress = "http://127.0.0.1" },
			`bind_address: must be an IP address such as "127.0.0.1" or a host name, or empty for every interface, got "http://127.0.0.1"`},
		{"BindAddressSpace", func(c *Config) { c.BindAddress = "127.0.0.1 " },
			`bind_address: must be an IP address such as "127.0.0.1" or a host name`},
		{"BindAddressEmptyZone", func(c *Config) { c.BindAddress = "fe80::1%" }, `bind_address: must be an IP address`},
		{"BindAddressBracketedIPv4", func(c *Config) { c.BindAddress = "[127.0.0.1]" }, `bind_address: must be an IP address`},
		{"BindAddressOneBracket", func(c *Config) { c.BindAddress = "[::1" }, `bind_address: must be an IP address`},
		{"BindAddressIPv4Zone", func(c *Config) { c.BindAddress = "127.0.0.1%lo" }, `bind_address: must be an IP address`},
		{"MetricPathRelative", func(c *Config) { c.Metric.Path = "metrics" },
			`metric.path: must be a URL path such as "/metrics", got "metrics"`},
		{"MetricPathQuery", func(c *Config) { c.Metric.Path = "/metrics?x=1" }, `metric.path: must be a URL path`},
		{"MetricPortZero", func(c *Config) { c.Metric.Port = 0 }, `metric.port: must be between 1 and 65535, got 0`},
		{"MetricPortIsAPIPort", func(c *Config) { c.Metric.Enabled, c.Metric.Port = true, c.Port },
			`metric.port: must differ from port (9444), which the API listens on`},
		{"MetricNamespace", func(c *Config) { c.Metric.Namespace = "my-harbor" },
			`metric.namespace: must be empty or a Prometheus name part (letters, digits and '_', not starting with a digit), got "my-harbor"`},
		{"MetricSubsystemDigit", func(c *Config) { c.Metric.Subsystem = "2jobs" }, `metric.subsystem: must be empty or a Prometheus name part`},
		{"ReaperMaxUpdateHoursNegative", func(c *Config) { c.Reaper.MaxUpdateHours = -1 },
			`reaper.max_update_hours: must be between 0 and 1000000, got -1`},
		{"ReaperMaxDanglingHoursHuge", func(c *Config) { c.Reaper.MaxDanglingHours = 1_000_001 },
			`reaper.max_dangling_hours: must be between 0 and 1000000, got 1000001`},
		{"HTTPSCertMissing", func(c *Config) { c.Protocol, c.HTTPSConfig.Key = "https", readable },
			`https_config.cert: is required when protocol is "https"; set it in the file or with env JOB_SERVICE_HTTPS_CERT`},
		{"HTTPSKeyMissing", func(c *Config) { c.Protocol, c.HTTPSConfig.Cert = "https", readable },
			`https_config.key: is required when protocol is "https"; set it in the file or with env JOB_SERVICE_HTTPS_KEY`},
		{"HTTPSCertUnreadable", func(c *Config) { c.Protocol, c.HTTPSConfig.Cert, c.HTTPSConfig.Key = "https", missing, readable },
			`https_config.cert: cannot read the file: open ` + missing},
		{"HTTPSKeyIsDirectory", func(c *Config) { c.Protocol, c.HTTPSConfig.Cert, c.HTTPSConfig.Key = "https", readable, dir },
			fmt.Sprintf(`https_config.key: %q is not a regular file`, dir)},
		{"WorkersZero", func(c *Config) { c.WorkerPool.Workers = 0 }, `worker_pool.workers: must be between 1 and 1024, got 0`},
		{"WorkersTooMany", func(c *Config) { c.WorkerPool.Workers = 1025 }, `worker_pool.workers: must be between 1 and 1024, got 1025`},
		{"Backend", func(c *Config) { c.WorkerPool.Backend = "" }, `worker_pool.backend: only "redis" is supported, got ""`},
		{"RedisURLScheme", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "http://:pw@redis:6379" },
			`worker_pool.redis_pool.redis_url: "http://:xxxxx@redis:6379": unknown scheme "http" (want redis, rediss, unix or redis+sentinel, or no URL at all for the embedded in-memory Redis)`},
		{"RedisURLBadPort", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis://:pw@redis:port/0" },
			`worker_pool.redis_pool.redis_url: "redis://:xxxxx@redis:port/0": address "redis:port": port "port" is not a number from 1 to 65535`},
		{"RedisURLNoHost", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:///0" },
			`worker_pool.redis_pool.redis_url: "redis:///0": missing host`},
		{"RedisURLBadDB", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "rediss://redis:6380/first" },
			`worker_pool.redis_pool.redis_url: "rediss://redis:6380/first": database "first" is not a number >= 0`},
		{"RedisURLUnknownParameter", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "rediss://user:pw@redis:6380/0?dial_timeout=3s" },
			`worker_pool.redis_pool.redis_url: "rediss://user:xxxxx@redis:6380/0?dial_timeout=3s": unknown query parameter "dial_timeout" (rediss URLs take idle_timeout_seconds, skip_verify)`},
		{"RedisURLBadIdleTimeout", func(c *Config) {
			c.WorkerPool.RedisPool.RedisURL = "redis://:pw@redis:6379/2?idle_timeout_seconds=half"
		},
			`worker_pool.redis_pool.redis_url: "redis://:xxxxx@redis:6379/2?idle_timeout_seconds=half": idle_timeout_seconds="half" is not a whole number of seconds`},
		{"SentinelNoHosts", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis+sentinel:///mymaster" },
			`worker_pool.redis_pool.redis_url: "redis+sentinel:///mymaster": missing sentinel addresses`},
		{"SentinelBadHost", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://h1:26379,h2:x/mymaster" },
			`worker_pool.redis_pool.redis_url: "redis+sentinel://h1:26379,h2:x/mymaster": sentinel address "h2:x": port "x" is not a number from 1 to 65535`},
		{"SentinelNoMaster", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://h1:26379" },
			`worker_pool.redis_pool.redis_url: "redis+sentinel://h1:26379": missing master name`},
		{"SentinelBadDB", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://h1:26379/m/x" },
			`worker_pool.redis_pool.redis_url: "redis+sentinel://h1:26379/m/x": database "x" is not a number >= 0`},
		{"UnixNoPath", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "unix://" },
			`worker_pool.redis_pool.redis_url: "unix://": missing socket path`},
		{"LegacyBadPort", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:63x9" },
			`worker_pool.redis_pool.redis_url: "redis:63x9": address "redis:63x9": port "63x9" is not a number from 1 to 65535`},
		{"LegacyNoHost", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = ":6379" },
			`worker_pool.redis_pool.redis_url: ":6379": address ":6379": missing host`},
		{"LegacyBadDB", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:6379,100,pw,db1" },
			`worker_pool.redis_pool.redis_url: "redis:6379,100,xxxxx": the last field, the database, is not a number >= 0`},
		{"NamespaceEmpty", func(c *Config) { c.WorkerPool.RedisPool.Namespace = "" },
			`worker_pool.redis_pool.namespace: must not be empty`},
		{"NamespaceSpace", func(c *Config) { c.WorkerPool.RedisPool.Namespace = "a b" },
			`worker_pool.redis_pool.namespace: must hold no whitespace and no braces (Berth adds the braces), got "a b"`},
		{"NamespaceBrace", func(c *Config) { c.WorkerPool.RedisPool.Namespace = "{ns}" },
			`worker_pool.redis_pool.namespace: must hold no whitespace and no braces (Berth adds the braces), got "{ns}"`},
		{"IdleTimeoutNegative", func(c *Config) { c.WorkerPool.RedisPool.IdleTimeoutSecond = -1 },
			`worker_pool.redis_pool.idle_timeout_second: must be at least 0, got -1`},
		{"JobLoggersEmpty", func(c *Config) { c.JobLoggers = nil }, `job_loggers: needs at least one logger`},
		{"LoggersEmpty", func(c *Config) { c.Loggers = []Logger{} }, `loggers: needs at least one logger`},
		{"LoggerName", func(c *Config) { c.Loggers[0].Name = "DB" },
			`loggers[0].name: unknown logger "DB"; use one of FILE, REDIS, STD_OUTPUT`},
		{"LoggerNameTwice", func(c *Config) { c.Loggers = append(c.Loggers, Logger{Name: "STD_OUTPUT", Level: "INFO"}) },
			`loggers[1].name: STD_OUTPUT is already configured at loggers[0]; keep one`},
		{"RedisServiceLogger", func(c *Config) {
			c.Loggers[0] = Logger{Name: "REDIS", Level: "INFO", Settings: map[string]any{"max_bytes": 1}}
		}, `loggers[0].name: REDIS keeps job logs only; use it under job_loggers`},
		{"LoggerLevel", func(c *Config) { c.JobLoggers[0].Level = "TRACE" },
			`job_loggers[0].level: must be one of DEBUG, INFO, WARNING, ERROR, FATAL, got "TRACE"`},
		{"LoggerLevelEmpty", func(c *Config) { c.JobLoggers[0].Level = "" },
			`job_loggers[0].level: must be one of DEBUG, INFO, WARNING, ERROR, FATAL, got ""`},
		{"LoggerSetting", func(c *Config) { c.JobLoggers[0].Settings["dir"] = "/x" },
			`job_loggers[0].settings.dir: unknown setting; FILE knows base_dir`},
		{"FileBaseDirMissing", func(c *Config) { delete(c.JobLoggers[0].Settings, "base_dir") },
			`job_loggers[0].settings.base_dir: must be a non-empty string naming the directory the log files are written to, got nothing`},
		{"FileBaseDirNotString", func(c *Config) { c.JobLoggers[0].Settings["base_dir"] = 5 },
			`job_loggers[0].settings.base_dir: must be a non-empty string naming the directory the log files are written to, got 5`},
		{"RedisMaxBytesZero", func(c *Config) { c.JobLoggers = append(c.JobLoggers, redisLogger(0)) },
			`job_loggers[1].settings.max_bytes: must be a whole number of bytes between 1 and 536870912, got 0`},
		{"RedisMaxBytesTooLarge", func(c *Config) { c.JobLoggers = append(c.JobLoggers, redisLogger(1<<30)) },
			`job_loggers[1].settings.max_bytes: must be a whole number of bytes between 1 and 536870912, got 1073741824`},
		{"RedisMaxBytesString", func(c *Config) { c.JobLoggers = append(c.JobLoggers, redisLogger("1MiB")) },
			`job_loggers[1].settings.max_bytes: must be a whole number of bytes between 1 and 536870912, got "1MiB"`},
		{"SweeperNotFile", func(c *Config) { c.Loggers[0].Sweeper = &Sweeper{Duration: 1} },
			`loggers[0].sweeper: only FILE loggers have a sweeper; remove it`},
		{"SweeperDuration", func(c *Config) { c.JobLoggers[0].Sweeper.Duration = 0 },
			`job_loggers[0].sweeper.duration: must be at least 1, got 0`},
		{"SweeperSetting", func(c *Config) { c.JobLoggers[0].Sweeper.Settings["age"] = 3 },
			`job_loggers[0].sweeper.settings.age: unknown setting; the sweeper knows work_dir`},
		{"SweeperWorkDir", func(c *Config) { c.JobLoggers[0].Sweeper.Settings["work_dir"] = "" },
			`job_loggers[0].sweeper.settings.work_dir: must be a non-empty string naming the directory swept, got ""`},
		{"MaxRetrieveZero", func(c *Config) { c.MaxRetrieveSizeMB = 0 }, `max_retrieve_size_mb: must be between 1 and 1024, got 0`},
		{"MaxRetrieveTooLarge", func(c *Config) { c.MaxRetrieveSizeMB = 1025 }, `max_retrieve_size_mb: must be between 1 and 1024, got 1025`},
		{"CoreURLRelative", func(c *Config) { c.CoreURL = "core:8080" },
			`core_url: must be an absolute http:// or https:// URL such as http://core:8080, got "core:8080"`},
		{"CoreURLScheme", func(c *Config) { c.CoreURL = "ftp://core" },
			`core_url: must be an absolute http:// or https:// URL such as http://core:8080, got "ftp://core"`},
		{"PluginsDir", func(c *Config) { c.PluginsDir = "" }, `plugins_dir: must not be empty`},
		{"ShutdownGraceNegative", func(c *Config) { c.ShutdownGrace = Duration(-time.Second) },
			`shutdown_grace: must be between 0s and 1h, got -1s`},
		{"ShutdownGraceTooLong", func(c *Config) { c.ShutdownGrace = Duration(61 * time.Minute) },
			`shutdown_grace: must be between 0s and 1h, got 1h1m`},
		{"JobPropertyName", func(c *Config) { c.JobProperties[""] = "x" }, `job_properties: a property needs a non-empty name`},
		{"PluginStartTimeout", func(c *Config) { c.Plugins.StartTimeout = 0 }, `plugins.start_timeout: must be more than 0, like 10s, got 0s`},
		{"PluginRestartBackoffMax", func(c *Config) { c.Plugins.RestartBackoffMax = 0 }, `plugins.restart_backoff_max: must be more than 0`},
		{"PluginKillTimeout", func(c *Config) { c.Plugins.KillTimeout = Duration(-1) }, `plugins.kill_timeout: must be more than 0`},
		{"PluginGOMAXPROCS", func(c *Config) { c.Plugins.GOMAXPROCS = -1 }, `plugins.gomaxprocs: must be at least 0, got -1`},
		{"PluginJobTimeout", func(c *Config) { c.Plugins.JobTimeout = Duration(-time.Minute) }, `plugins.job_timeout: must be at least 0s, got -1m`},
		{"StatsSuccessTTL", func(c *Config) { c.Stats.SuccessTTL = Duration(59 * time.Second) }, `stats.success_ttl: must be at least 1m, got 59s`},
		{"StatsStoppedTTL", func(c *Config) { c.Stats.StoppedTTL = 0 }, `stats.stopped_ttl: must be at least 1m, got 0s`},
		{"StatsErrorTTL", func(c *Config) { c.Stats.ErrorTTL = Duration(time.Second) }, `stats.error_ttl: must be at least 1m, got 1s`},
		{"RetryBackoffBase", func(c *Config) { c.Retry.BackoffBase = Duration(500 * time.Millisecond) },
			`retry.backoff_base: must be at least 1s, got 500ms`},
		{"RetryBackoffMax", func(c *Config) { c.Retry.BackoffMax = Duration(9 * time.Second) },
			`retry.backoff_max: must be at least retry.backoff_base (10s), got 9s`},
		{"PeriodicMaxExecutions", func(c *Config) { c.Periodic.MaxExecutions = 0 }, `periodic.max_executions: must be at least 1, got 0`},
		{"HooksBackoffBase", func(c *Config) { c.Hooks.BackoffBase = 0 }, `hooks.backoff_base: must be more than 0`},
		{"HooksBackoffMax", func(c *Config) { c.Hooks.BackoffMax = Duration(time.Millisecond) },
			`hooks.backoff_max: must be at least hooks.backoff_base (1s), got 1ms`},
		{"HooksTimeout", func(c *Config) { c.Hooks.Timeout = 0 }, `hooks.timeout: must be more than 0`},
		{"HooksWorkersZero", func(c *Config) { c.Hooks.Workers = 0 }, `hooks.workers: must be between 1 and 256, got 0`},
		{"HooksWorkersTooMany", func(c *Config) { c.Hooks.Workers = 257 }, `hooks.workers: must be between 1 and 256, got 257`},
		{"RewriteFrom", func(c *Config) { c.Hooks.Rewrites = []Rewrite{{From: "old-core", To: "http://core"}} },
			`hooks.rewrites[0].from: must be an absolute http:// or https:// URL such as http://core:8080, got "old-core"`},
		{"RewriteTo", func(c *Config) { c.Hooks.Rewrites = []Rewrite{{From: "http://old", To: ""}} },
			`hooks.rewrites[0].to: must be an absolute http:// or https:// URL such as http://core:8080, got ""`},
		{"RewriteTwice", func(c *Config) {
			c.Hooks.Rewrites = []Rewrite{{From: "http://old", To: "http://a"}, {From: "http://old", To: "http://b"}}
		}, `hooks.rewrites[1].from: "http://old" is already rewritten by hooks.rewrites[0]; keep one`},
		{"ReaperInterval", func(c *Config) { c.Reaper.Interval = 0 }, `reaper.interval: must be more than 0`},
		{"ReaperDeadAfter", func(c *Config) { c.Reaper.DeadAfter = Duration(5 * time.Second) }, "reaper.dead_after"},
		{"ReaperMaxJobDuration", func(c *Config) { c.Reaper.MaxJobDuration = Duration(30 * time.Second) },
			`reaper.max_job_duration: must be at least 1m, got 30s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			ps := problems(err)
			if len(ps) != 1 {
				t.Fatalf("Validate() gave %d problems, want 1: %v", len(ps), err)
			}
			if !strings.HasPrefix(ps[0].Error(), tc.want) {
				t.Errorf("Validate():\n got: %v\nwant: %s", ps[0], tc.want)
			}
		})
	}
}

// okFile returns a readable file.
func okFile(t *testing.T) string {
	t.Helper()
	cert, _ := tlsFiles(t)
	return cert
}

func redisLogger(maxBytes any) Logger {
	return Logger{Name: LoggerRedis, Level: "INFO", Settings: map[string]any{SettingMaxBytes: maxBytes}}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	readable := okFile(t)
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
	}{
		{"Defaults", func(*Config) {}},
		{"HTTPS", func(c *Config) { c.Protocol, c.HTTPSConfig.Cert, c.HTTPSConfig.Key = "https", readable, readable }},
		{"HTTPSFilesIgnoredOverHTTP", func(c *Config) { c.HTTPSConfig.Cert = "/no/such/file" }},
		{"PortBounds", func(c *Config) { c.Port = 65535 }},
		{"WorkersBounds", func(c *Config) { c.WorkerPool.Workers = 1024 }},
		{"RedisURL", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis://redis:6379" }},
		{"RedisURLWithDB", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis://:pw@redis:6379/15" }},
		{"RedisURLUserPassword", func(c *Config) {
			c.WorkerPool.RedisPool.RedisURL = "rediss://user:pw@redis.example.com:6380/0?skip_verify=true"
		}},
		{"RedisURLIPv6", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis://[::1]:6379/0" }},
		{"Sentinel", func(c *Config) {
			c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://:pw@h1:26379,h2:26379,h3:26379/mymaster/2"
		}},
		{"SentinelNoDB", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://h1:26379/mymaster" }},
		{"SentinelDefaultPort", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://h1:26379,h2/mymaster" }},
		{"Unix", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "unix:///run/redis/redis.sock?db=2" }},
		{"Legacy", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:6379,100,pw,2" }},
		{"LegacyHostPort", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "10.0.0.5:6379" }},
		{"LegacyHostOnly", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis" }},
		{"LegacyEmptyParts", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:6379,,," }},
		{"LegacyCommasInPassword", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:6379,100,p,w,0" }},
		{"LegacyWeightIgnored", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis:6379,heavy" }},
		{"IdleTimeoutZero", func(c *Config) { c.WorkerPool.RedisPool.IdleTimeoutSecond = 0 }},
		{"LowerCaseOnAHandBuiltConfig", func(c *Config) { c.Loggers[0] = Logger{Name: "std_output", Level: "debug"} }},
		{"AllLoggers", func(c *Config) {
			c.JobLoggers = append(c.JobLoggers, Logger{Name: "STD_OUTPUT", Level: "FATAL"}, redisLogger(int64(512<<20)))
			c.Loggers = append(c.Loggers, Logger{Name: "FILE", Level: "ERROR", Settings: map[string]any{"base_dir": "/var/log/berth"}})
		}},
		{"FileWithoutSweeper", func(c *Config) { c.JobLoggers[0].Sweeper = nil }},
		{"SweeperWorkDirElsewhere", func(c *Config) { c.JobLoggers[0].Sweeper.Settings["work_dir"] = "/elsewhere" }},
		{"MaxRetrieveBounds", func(c *Config) { c.MaxRetrieveSizeMB = 1024 }},
		{"CoreURL", func(c *Config) { c.CoreURL = "https://core.example.com:8443/base" }},
		{"EmptySecret", func(c *Config) { c.Secret = "" }},
		{"ShutdownGraceBounds", func(c *Config) { c.ShutdownGrace = Duration(time.Hour) }},
		{"ShutdownGraceZero", func(c *Config) { c.ShutdownGrace = 0 }},
		{"JobTimeoutSet", func(c *Config) { c.Plugins.JobTimeout = Duration(time.Hour) }},
		{"StatsTTLMinimum", func(c *Config) { c.Stats = Stats{Duration(time.Minute), Duration(time.Minute), Duration(time.Minute)} }},
		{"RetryMaxEqualsBase", func(c *Config) { c.Retry = Retry{Duration(time.Second), Duration(time.Second)} }},
		{"HooksWorkersBounds", func(c *Config) { c.Hooks.Workers = 256 }},
		{"Rewrites", func(c *Config) {
			c.Hooks.Rewrites = []Rewrite{{From: "http://old:8080", To: "https://core"}, {From: "http://older", To: "https://core"}}
		}},
		{"ReaperLongJobs", func(c *Config) { c.Reaper.MaxJobDuration = Duration(30 * 24 * time.Hour) }},
		{"HarborReaperHours", func(c *Config) { c.Reaper.MaxUpdateHours, c.Reaper.MaxDanglingHours = 24, 168 }},
		{"HarborRedisURL", func(c *Config) { c.WorkerPool.RedisPool.RedisURL = "redis://redis:6379/2?idle_timeout_seconds=30" }},
		{"HarborSentinelURL", func(c *Config) {
			c.WorkerPool.RedisPool.RedisURL = "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/2?idle_timeout_seconds=30"
		}},
		{"BindLoopback", func(c *Config) { c.BindAddress = "127.0.0.1" }},
		{"BindIPv6", func(c *Config) { c.BindAddress = "::1" }},
		{"BindIPv6Bracketed", func(c *Config) { c.BindAddress = "[::1]" }},
		{"BindIPv6Zone", func(c *Config) { c.BindAddress = "fe80::1%eth0" }},
		{"BindHostName", func(c *Config) { c.BindAddress = "jobservice.internal" }},
		{"MetricHarbor", func(c *Config) { c.Metric = Metric{Enabled: true, Path: "/metrics", Port: 9090} }},
		{"MetricDisabledOnAPIPort", func(c *Config) { c.Metric.Port = c.Port }},
		{"MetricNamesEmpty", func(c *Config) { c.Metric.Namespace, c.Metric.Subsystem = "", "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Port = 0
	c.WorkerPool.Workers = 0
	c.JobLoggers[0].Level = "LOUD"
	c.Hooks.Workers = 0
	err := c.Validate()
	var got []string
	for _, p := range problems(err) {
		got = append(got, p.Error())
	}
	want := []string{
		"port: must be between 1 and 65535, got 0",
		"worker_pool.workers: must be between 1 and 1024, got 0",
		`job_loggers[0].level: must be one of DEBUG, INFO, WARNING, ERROR, FATAL, got "LOUD"`,
		"hooks.workers: must be between 1 and 256, got 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Validate():\n got: %q\nwant: %q", got, want)
	}
}

func TestValidateChangesNothing(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Loggers[0] = Logger{Name: "std_output", Level: "debug"}
	c.JobLoggers[0].Settings = nil
	before := flatten(c)
	_ = c.Validate()
	after := flatten(c)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed from %q to %q", k, v, after[k])
		}
	}
}
