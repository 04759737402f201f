package config

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	cert, key := tlsFiles(t)
	cases := []struct {
		env   string
		value string
		want  map[string]string // flattened keys that change, and to what
		extra []string          // other env pairs the case needs
	}{
		{"JOB_SERVICE_PROTOCOL", "https", map[string]string{
			"protocol": "https (string)", "https_config.cert": cert + " (string)", "https_config.key": key + " (string)",
		}, []string{"JOB_SERVICE_HTTPS_CERT", cert, "JOB_SERVICE_HTTPS_KEY", key}},
		{"JOB_SERVICE_PORT", "8080", map[string]string{"port": "8080 (int)"}, nil},
		{"JOB_SERVICE_HTTPS_CERT", cert, map[string]string{"https_config.cert": cert + " (string)"}, nil},
		{"JOB_SERVICE_HTTPS_KEY", key, map[string]string{"https_config.key": key + " (string)"}, nil},
		{"JOB_SERVICE_HTTPS_CLIENT_CA", cert, map[string]string{"https_config.client_ca": cert + " (string)"}, nil},
		{"JOB_SERVICE_POOL_WORKERS", "64", map[string]string{"worker_pool.workers": "64 (int)"}, nil},
		{"JOB_SERVICE_POOL_BACKEND", "redis", map[string]string{}, nil},
		{"JOB_SERVICE_POOL_REDIS_URL", "redis://:pw@redis:6379/2", map[string]string{
			"worker_pool.redis_pool.redis_url": "redis://:pw@redis:6379/2 (string)",
		}, nil},
		{"JOB_SERVICE_POOL_REDIS_NAMESPACE", "ns_2", map[string]string{"worker_pool.redis_pool.namespace": "ns_2 (string)"}, nil},
		{"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "30", map[string]string{"worker_pool.redis_pool.idle_timeout_second": "30 (int)"}, nil},
		{"JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "0", map[string]string{"worker_pool.redis_pool.idle_timeout_second": "0 (int)"}, nil},
		{"JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "45", map[string]string{"worker_pool.redis_pool.idle_timeout_second": "45 (int)"},
			[]string{"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "45"}}, // both names, one value
		{"CORE_SECRET", "s3cr3t", map[string]string{"Secret": "s3cr3t (string)"}, nil},
		{"CORE_URL", "https://core.example.com", map[string]string{"core_url": "https://core.example.com (string)"}, nil},
		{"MAX_JOB_DURATION_SECONDS", "604800", map[string]string{"reaper.max_job_duration": "168h"}, nil},
		{"LOG_LEVEL", "warning", map[string]string{"loggers[0].level": "WARNING (string)"}, nil},
		{"LOG_LEVEL", "debug", map[string]string{"loggers[0].level": "ERROR (string)"}, []string{"BERTH_LOG_LEVEL", "error"}}, // Berth's wins
		{"METRIC_NAMESPACE", "harbor2", map[string]string{"metric.namespace": "harbor2 (string)"}, nil},
		{"METRIC_NAMESPACE", "", map[string]string{"metric.namespace": " (string)"}, nil},
		{"METRIC_SUBSYSTEM", "js", map[string]string{"metric.subsystem": "js (string)"}, nil},
		{"METRIC_SUBSYSTEM", "", map[string]string{"metric.subsystem": " (string)"}, nil},
		{"BERTH_BIND_ADDRESS", "127.0.0.1", map[string]string{"bind_address": "127.0.0.1 (string)"}, nil},
		{"BERTH_PLUGINS_DIR", "/opt/plugins", map[string]string{"plugins_dir": "/opt/plugins (string)"}, nil},
		{"BERTH_SHUTDOWN_GRACE", "2m", map[string]string{"shutdown_grace": "2m"}, nil},
		{"BERTH_SHUTDOWN_GRACE", "90", map[string]string{"shutdown_grace": "1m30s"}, nil},
		{"BERTH_LOG_LEVEL", "debug", map[string]string{"loggers[0].level": "DEBUG (string)"}, nil},
		{"BERTH_PLUGIN_REATTACH", `{"scan":{"protocol":"grpc","protocol_version":2,"network":"unix","address":"/tmp/scan.sock","pid":7}}`,
			map[string]string{"Reattach.len": "1", "Reattach.scan.Protocol": "grpc (string)", "Reattach.scan.ProtocolVersion": "2 (int)",
				"Reattach.scan.Network": "unix (string)", "Reattach.scan.Address": "/tmp/scan.sock (string)", "Reattach.scan.Pid": "7 (int)"}, nil},
	}
	for _, tc := range cases {
		t.Run(envTestName(tc.env, tc.value), func(t *testing.T) {
			t.Parallel()
			base, err := Load("", env(tc.extra...))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Load("", env(append([]string{tc.env, tc.value}, tc.extra...)...))
			if err != nil {
				t.Fatal(err)
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

	t.Run("EveryVariableIsCovered", func(t *testing.T) {
		t.Parallel()
		covered := map[string]bool{}
		for _, c := range cases {
			covered[c.env] = true
		}
		for _, ev := range envVars {
			for _, name := range append([]string{ev.name}, ev.aliases...) {
				if !covered[name] {
					t.Errorf("%s has no case in TestEnvOverrides", name)
				}
			}
		}
	})
}

// envTestName turns JOB_SERVICE_PORT, "8080" into JobServicePort8080.
func envTestName(name, value string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(strings.ToLower(name), "_") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	if len(value) > 8 {
		return b.String()
	}
	v := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, value)
	if v != "" {
		b.WriteString(strings.ToUpper(v[:1]) + v[1:])
	}
	return b.String()
}

func TestEnvOverridesFile(t *testing.T) {
	t.Parallel()
	path := writeYAML(t, "port: 9443\nloggers:\n  - name: STD_OUTPUT\n    level: ERROR\n  - name: FILE\n    level: INFO\n")
	got, err := Load(path, env("JOB_SERVICE_PORT", "8080", "BERTH_LOG_LEVEL", "WARNING"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 8080 {
		t.Errorf("port = %d, want 8080 from env over 9443 from the file", got.Port)
	}
	for i, l := range got.Loggers {
		if l.Level != "WARNING" {
			t.Errorf("loggers[%d].level = %q, want WARNING from BERTH_LOG_LEVEL", i, l.Level)
		}
	}
}

func TestEnvEmptyCountsAsUnset(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range envVars {
		t.Run(envTestName(ev.name, ""), func(t *testing.T) {
			t.Parallel()
			c := Default()
			if ev.aliases != nil {
				for _, alias := range ev.aliases {
					if _, err := applyEnv(c, env(alias, "")); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := decodeYAML(data, c); err != nil {
				t.Fatal(err)
			}
			if _, err := applyEnv(c, env(ev.name, "")); err != nil {
				t.Fatal(err)
			}
			want := Default()
			if _, err := decodeYAML(data, want); err != nil {
				t.Fatal(err)
			}
			switch ev.name {
			case "JOB_SERVICE_POOL_REDIS_URL":
				// Set and empty, it selects the embedded backend over the file's Redis.
				want.WorkerPool.RedisPool.RedisURL = ""
			case "BERTH_BIND_ADDRESS":
				want.BindAddress = "" // every interface
			case "METRIC_NAMESPACE":
				want.Metric.Namespace = "" // as in Harbor: no prefix
			case "METRIC_SUBSYSTEM":
				want.Metric.Subsystem = ""
			}
			assertConfig(t, c, want)
		})
	}
}

func TestEnvBadValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env, value string
		want       string
	}{
		{"JOB_SERVICE_PORT", "abc", `port (from env JOB_SERVICE_PORT): must be a whole number, got "abc"`},
		{"JOB_SERVICE_PORT", "94.44", `port (from env JOB_SERVICE_PORT): must be a whole number, got "94.44"`},
		{"JOB_SERVICE_PORT", "70000", `port (from env JOB_SERVICE_PORT): must be between 1 and 65535, got 70000`},
		{"JOB_SERVICE_POOL_WORKERS", "ten", `worker_pool.workers (from env JOB_SERVICE_POOL_WORKERS): must be a whole number, got "ten"`},
		{"JOB_SERVICE_POOL_WORKERS", "0", `worker_pool.workers (from env JOB_SERVICE_POOL_WORKERS): must be between 1 and 1024, got 0`},
		{"JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "1h", `worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT): must be a whole number, got "1h"`},
		{"JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT", "-1", `worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT): must be at least 0, got -1`},
		{"JOB_SERVICE_PROTOCOL", "ftp", `protocol (from env JOB_SERVICE_PROTOCOL): must be "http" or "https", got "ftp"`},
		{"JOB_SERVICE_POOL_BACKEND", "etcd", `worker_pool.backend (from env JOB_SERVICE_POOL_BACKEND): only "redis" is supported, got "etcd"`},
		{"JOB_SERVICE_POOL_REDIS_URL", "mysql://db", `worker_pool.redis_pool.redis_url (from env JOB_SERVICE_POOL_REDIS_URL): "mysql://db": unknown scheme "mysql"`},
		{"JOB_SERVICE_POOL_REDIS_NAMESPACE", "{ns}", `worker_pool.redis_pool.namespace (from env JOB_SERVICE_POOL_REDIS_NAMESPACE): must hold no whitespace and no braces`},
		{"CORE_URL", "core:8080", `core_url (from env CORE_URL): must be an absolute http:// or https:// URL`},
		{"BERTH_SHUTDOWN_GRACE", "soon", `shutdown_grace (from env BERTH_SHUTDOWN_GRACE): must be a duration like "30s" or "1h30m", or a whole number of seconds, got "soon"`},
		{"BERTH_SHUTDOWN_GRACE", "2h", `shutdown_grace (from env BERTH_SHUTDOWN_GRACE): must be between 0s and 1h, got 2h`},
		{"BERTH_LOG_LEVEL", "LOUD", `loggers[0].level (from env BERTH_LOG_LEVEL): must be one of DEBUG, INFO, WARNING, ERROR, FATAL, got "LOUD"`},
		{"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "30s",
			`worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND): must be a whole number, got "30s"`},
		{"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "-5",
			`worker_pool.redis_pool.idle_timeout_second (from env JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND): must be at least 0, got -5`},
		{"MAX_JOB_DURATION_SECONDS", "1d", `reaper.max_job_duration (from env MAX_JOB_DURATION_SECONDS): must be a whole number of seconds, got "1d"`},
		{"MAX_JOB_DURATION_SECONDS", "86400.0", `reaper.max_job_duration (from env MAX_JOB_DURATION_SECONDS): must be a whole number of seconds, got "86400.0"`},
		{"MAX_JOB_DURATION_SECONDS", "30", `reaper.max_job_duration (from env MAX_JOB_DURATION_SECONDS): must be at least 1m, got 30s`},
		{"LOG_LEVEL", "trace", `loggers[0].level (from env LOG_LEVEL): must be one of DEBUG, INFO, WARNING, ERROR, FATAL, got "TRACE"`},
		{"METRIC_NAMESPACE", "my-harbor", `metric.namespace (from env METRIC_NAMESPACE): must be empty or a Prometheus name part`},
		{"METRIC_SUBSYSTEM", "job service", `metric.subsystem (from env METRIC_SUBSYSTEM): must be empty or a Prometheus name part`},
		{"BERTH_BIND_ADDRESS", "0.0.0.0:9444", `bind_address (from env BERTH_BIND_ADDRESS): must be an address without a port`},
		{"JOB_SERVICE_HTTPS_CERT", "", ""}, // empty is unset: no error
	} {
		t.Run(envTestName(tc.env, tc.value), func(t *testing.T) {
			t.Parallel()
			_, err := Load("", env(tc.env, tc.value))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load with %s=%q: %v", tc.env, tc.value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load with %s=%q: no error, want %q", tc.env, tc.value, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load with %s=%q:\n got: %v\nwant: %s", tc.env, tc.value, err, tc.want)
			}
			if ps := problems(errors.Unwrap(err)); len(ps) != 1 {
				t.Errorf("got %d problems, want 1: %v", len(ps), err)
			}
		})
	}

	t.Run("AllReportedAtOnce", func(t *testing.T) {
		t.Parallel()
		_, err := Load("testdata/zero_workers.yml", env("JOB_SERVICE_PORT", "abc", "BERTH_SHUTDOWN_GRACE", "soon", "JOB_SERVICE_PROTOCOL", "ftp"))
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{
			"config testdata/zero_workers.yml: 4 problems:",
			"\n\tport (from env JOB_SERVICE_PORT): ",
			"\n\tshutdown_grace (from env BERTH_SHUTDOWN_GRACE): ",
			"\n\tprotocol (from env JOB_SERVICE_PROTOCOL): ",
			"\n\tworker_pool.workers: must be between 1 and 1024, got 0",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	})
}

func TestLoadUnknownKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"TopLevel", "prot: http\n", []string{"prot (line 1): unknown key; the keys here are api, bind_address, core_url, hooks, https_config,"}},
		// Harbor's keys are known; keys Harbor never had are not.
		{"HarborMetricTypo", "metric:\n  enable: true\n", []string{"metric.enable (line 2): unknown key; the keys here are enabled, namespace, path, port, subsystem"}},
		{"HarborReaperTypo", "reaper:\n  max_update_hour: 24\n", []string{"reaper.max_update_hour (line 2): unknown key; the keys here are dead_after, interval, max_dangling_hours, max_job_duration, max_update_hours"}},
		{"NotHarbors", "notification:\n  webhook_job_max_retry: 3\n", []string{"notification (line 1): unknown key"}},
		{"Nested", "worker_pool:\n  redis_pool:\n    url: redis://r\n", []string{"worker_pool.redis_pool.url (line 3): unknown key; the keys here are idle_timeout_second, namespace, redis_url"}},
		{"InList", "job_loggers:\n  - name: FILE\n    levle: INFO\n", []string{"job_loggers[0].levle (line 3): unknown key"}},
		{"InSweeper", "job_loggers:\n  - name: FILE\n    sweeper:\n      days: 1\n", []string{"job_loggers[0].sweeper.days (line 4): unknown key; the keys here are duration, settings"}},
		{"InRewrite", "hooks:\n  rewrites:\n    - from: http://a\n      too: http://b\n", []string{"hooks.rewrites[0].too (line 4): unknown key"}},
		{"Secret", "secret: s3cr3t\n", []string{"secret (line 1): unknown key; the secret is read from env CORE_SECRET only"}},
		{"GoFieldName", "https_config:\n  Cert: a.crt\n", []string{"https_config.Cert (line 2): unknown key"}},
		{"HarborWorkerPoolTypo", "worker_pool:\n  worker_pool: 10\n", []string{"worker_pool.worker_pool (line 2): unknown key"}},
		{"LoggerSetting", "job_loggers:\n  - name: FILE\n    settings:\n      basedir: /x\n", []string{"job_loggers[0].settings.basedir: unknown setting; FILE knows base_dir"}},
		{"SweeperSetting", "job_loggers:\n  - name: FILE\n    sweeper:\n      duration: 1\n      settings:\n        dir: /x\n", []string{"job_loggers[0].sweeper.settings.dir: unknown setting; the sweeper knows work_dir"}},
		{"StdOutputSetting", "loggers:\n  - name: STD_OUTPUT\n    settings:\n      output: stderr\n", []string{"loggers[0].settings.output: unknown setting; STD_OUTPUT has no settings"}},
		{"Several", "a: 1\nworker_pool:\n  b: 2\n", []string{"a (line 1): unknown key", "worker_pool.b (line 3): unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loadFails(t, writeYAML(t, tc.yaml), tc.want...)
		})
	}

	t.Run("Testdata", func(t *testing.T) {
		t.Parallel()
		loadFails(t, "testdata/unknown_key.yml",
			"config testdata/unknown_key.yml: 2 problems:",
			"worker_pool.redis_pool.nmespace (line 6): unknown key",
			"secret (line 7): unknown key; the secret is read from env CORE_SECRET only")
	})
}

func TestLoadTypeError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want string
	}{
		{"IntFromWord", "port: abc\n", `port (line 1): must be a whole number, got "abc"`},
		{"IntFromQuoted", "port: \"9444\"\n", `port (line 1): must be a whole number, got "9444"`},
		{"IntFromFloat", "worker_pool:\n  workers: 1.5\n", `worker_pool.workers (line 2): must be a whole number, got "1.5"`},
		{"IntFromList", "port: [1]\n", `port (line 1): must be a whole number, got a list`},
		{"StringFromList", "protocol: [http]\n", `protocol (line 1): must be a single value, got a list`},
		{"StringFromMapping", "core_url: {a: b}\n", `core_url (line 1): must be a single value, got a mapping`},
		{"StructFromScalar", "worker_pool: 5\n", `worker_pool (line 1): must be a mapping of keys, got "5"`},
		{"ListFromMapping", "job_loggers:\n  name: FILE\n", `job_loggers (line 2): must be a list, got a mapping`},
		{"ListItemFromScalar", "hooks:\n  rewrites:\n    - http://a\n", `hooks.rewrites[0] (line 3): must be a mapping of keys, got "http://a"`},
		{"MapFromList", "job_properties: [a]\n", `job_properties (line 1): must be a mapping, got a list`},
		{"MapValueFromList", "job_properties:\n  region: [a, b]\n", `job_properties.region (line 2): must be a single value, got a list`},
		{"SweeperFromScalar", "job_loggers:\n  - name: FILE\n    sweeper: 1\n", `job_loggers[0].sweeper (line 3): must be a mapping of keys, got "1"`},
		{"DurationFromWord", "reaper:\n  interval: often\n", `reaper.interval (line 2): must be a duration like "30s" or "1h30m", or a whole number of seconds, got "often"`},
		{"DurationFromFloat", "shutdown_grace: 1.5\n", `shutdown_grace (line 1): must be a duration`},
		{"DurationFromList", "shutdown_grace: [1s]\n", `shutdown_grace (line 1): must be a duration like "30s" or "1h30m", or a whole number of seconds, got a list`},
		{"Root", "- port: 1\n", `: top level (line 1): must be a mapping of keys, got a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loadFails(t, writeYAML(t, tc.yaml), tc.want)
		})
	}

	t.Run("Testdata", func(t *testing.T) {
		t.Parallel()
		loadFails(t, "testdata/bad_type.yml",
			"3 problems:",
			`port (line 2): must be a whole number, got "abc"`,
			`worker_pool.workers (line 4): must be a whole number, got "2.5"`,
			`shutdown_grace (line 5): must be a duration`)
	})
}

// loadFails loads path and checks that the error holds every want.
func loadFails(t *testing.T, path string, want ...string) {
	t.Helper()
	c, err := Load(path, nil)
	if err == nil {
		t.Fatalf("Load(%s) = %+v, want an error", path, c)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Load(%s) error lacks %q:\n%v", path, w, err)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()

	t.Run("ExplicitZeroStaysZero", func(t *testing.T) {
		t.Parallel()
		got, err := Load("testdata/explicit_zero.yml", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := Default()
		want.ShutdownGrace = 0
		want.WorkerPool.RedisPool.IdleTimeoutSecond = 0
		assertConfig(t, got, want)
	})

	t.Run("ExplicitZeroIsJudged", func(t *testing.T) {
		t.Parallel()
		loadFails(t, "testdata/zero_workers.yml",
			"config testdata/zero_workers.yml: worker_pool.workers: must be between 1 and 1024, got 0")
	})

	t.Run("AbsentKeysKeepDefaults", func(t *testing.T) {
		t.Parallel()
		got, err := Load(writeYAML(t, "worker_pool:\n  workers: 3\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := Default()
		want.WorkerPool.Workers = 3
		assertConfig(t, got, want)
	})

	t.Run("NullKeepsDefault", func(t *testing.T) {
		t.Parallel()
		got, err := Load(writeYAML(t, "port: ~\nworker_pool:\nshutdown_grace:\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		assertConfig(t, got, Default())
	})

	t.Run("EmptyLoggerListIsRefused", func(t *testing.T) {
		t.Parallel()
		loadFails(t, writeYAML(t, "job_loggers: []\nloggers:\n"),
			"job_loggers: needs at least one logger", "loggers: needs at least one logger")
	})

	t.Run("EmptyFile", func(t *testing.T) {
		t.Parallel()
		got, err := Load(writeYAML(t, "# nothing but a comment\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		assertConfig(t, got, Default())
	})

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		loadFails(t, "testdata/no-such-file.yml", "config: open testdata/no-such-file.yml: ")
	})

	t.Run("SyntaxError", func(t *testing.T) {
		t.Parallel()
		loadFails(t, writeYAML(t, "port: 1\n  workers: [\n"), "yaml: line 2")
	})

	t.Run("TwoDocuments", func(t *testing.T) {
		t.Parallel()
		loadFails(t, writeYAML(t, "port: 1\n---\nport: 2\n"), "line 2: a second YAML document starts here")
	})

	t.Run("DuplicateKey", func(t *testing.T) {
		t.Parallel()
		loadFails(t, writeYAML(t, "port: 1\nport: 2\n"), `mapping key "port" already defined`)
	})

	t.Run("Anchors", func(t *testing.T) {
		t.Parallel()
		got, err := Load(writeYAML(t, "hooks:\n  backoff_max: &long 20m\nretry:\n  backoff_max: *long\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hooks.BackoffMax.String() != "20m" || got.Retry.BackoffMax.String() != "20m" {
			t.Errorf("backoff_max = %s, %s; want 20m twice", got.Hooks.BackoffMax, got.Retry.BackoffMax)
		}
	})

	t.Run("HarborConfig", func(t *testing.T) {
		t.Parallel()
		got, err := Load("testdata/harbor.yml", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.WorkerPool.RedisPool.RedisURL != "redis:6379,100,,2" || got.Port != 8080 {
			t.Errorf("redis_url, port = %q, %d", got.WorkerPool.RedisPool.RedisURL, got.Port)
		}
		if got.JobLoggers[0].Level != "INFO" || got.Loggers[0].Level != "INFO" {
			t.Errorf("levels = %q, %q; want them upper-cased", got.JobLoggers[0].Level, got.Loggers[0].Level)
		}
	})

	t.Run("LoggerDefaultsAndSpelling", func(t *testing.T) {
		t.Parallel()
		got, err := Load("testdata/normalize.yml", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := Default()
		want.JobLoggers = []Logger{
			{
				Name: "FILE", Level: "INFO", Settings: map[string]any{"base_dir": "/tmp/berth/job_logs"},
				Sweeper: &Sweeper{Duration: 3, Settings: map[string]any{"work_dir": "/tmp/berth/job_logs"}},
			},
			{Name: "REDIS", Level: "DEBUG", Settings: map[string]any{"max_bytes": 1 << 20}},
		}
		want.Loggers = []Logger{{Name: "STD_OUTPUT", Level: "WARNING", Settings: map[string]any{}}}
		assertConfig(t, got, want)
		if got.JobLoggers[0].BaseDir() != "/tmp/berth/job_logs" || got.JobLoggers[1].MaxBytes() != 1<<20 ||
			got.JobLoggers[0].Sweeper.WorkDir() != "/tmp/berth/job_logs" {
			t.Errorf("accessors: BaseDir %q, MaxBytes %d, WorkDir %q",
				got.JobLoggers[0].BaseDir(), got.JobLoggers[1].MaxBytes(), got.JobLoggers[0].Sweeper.WorkDir())
		}
	})

	t.Run("ServiceFileLoggerHasItsOwnDir", func(t *testing.T) {
		t.Parallel()
		got, err := Load(writeYAML(t, "loggers:\n  - name: FILE\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Loggers[0].BaseDir(); d != "/tmp/berth/logs" {
			t.Errorf("loggers[0].settings.base_dir = %q, want /tmp/berth/logs", d)
		}
	})

	t.Run("NilLookupMeansNoEnv", func(t *testing.T) {
		t.Parallel()
		got, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret != "" {
			t.Errorf("secret = %q with a nil lookup", got.Secret)
		}
	})
}
