package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// env returns a lookup over name, value pairs, leaving the process env alone.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// tlsFiles writes a readable certificate and key file and returns their paths.
// Validate only checks that they are readable, so the content is a placeholder.
func tlsFiles(t *testing.T) (cert, key string) {
	t.Helper()
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for _, p := range []string{cert, key} {
		if err := os.WriteFile(p, []byte("placeholder"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}

// writeYAML writes body to a temporary file and returns its path.
func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "berth.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// flatten maps every leaf of v to its value, keyed by the YAML key path
// ("worker_pool.redis_pool.namespace", "job_loggers[1].settings.base_dir").
// Fields without a YAML key (the secret) appear under their Go name.
func flatten(v any) map[string]string {
	out := map[string]string{}
	flattenValue(reflect.ValueOf(v), "", out)
	return out
}

func flattenValue(v reflect.Value, key string, out map[string]string) {
	if v.Type() == durationType {
		out[key] = v.Interface().(Duration).String()
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			out[key] = "<nil>"
			return
		}
		flattenValue(v.Elem(), key, out)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || name == "" {
				name = f.Name
			}
			flattenValue(v.Field(i), joinKey(key, name), out)
		}
	case reflect.Slice:
		out[key+".len"] = fmt.Sprint(v.Len())
		for i := range v.Len() {
			flattenValue(v.Index(i), fmt.Sprintf("%s[%d]", key, i), out)
		}
	case reflect.Map:
		out[key+".len"] = fmt.Sprint(v.Len())
		for _, k := range v.MapKeys() {
			flattenValue(v.MapIndex(k), joinKey(key, k.String()), out)
		}
	default:
		out[key] = fmt.Sprintf("%v (%T)", v.Interface(), v.Interface())
	}
}

// diff lists the keys where got and want differ.
func diff(got, want *Config) []string {
	g, w := flatten(got), flatten(want)
	var d []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if g[k] != w[k] {
			d = append(d, fmt.Sprintf("%s: got %q, want %q", k, g[k], w[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if _, ok := w[k]; !ok {
			d = append(d, fmt.Sprintf("%s: got %q, want no such key", k, g[k]))
		}
	}
	return d
}

func assertConfig(t *testing.T, got, want *Config) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Error(d)
	}
	if !t.Failed() && !reflect.DeepEqual(got, want) {
		t.Errorf("configs differ in a way flatten misses:\ngot  %#v\nwant %#v", got, want)
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()

	want := map[string]string{
		"protocol":                                   "http (string)",
		"port":                                       "9444 (int)",
		"bind_address":                               " (string)",
		"https_config.cert":                          " (string)",
		"https_config.key":                           " (string)",
		"https_config.client_ca":                     " (string)",
		"worker_pool.workers":                        "10 (int)",
		"worker_pool.backend":                        "redis (string)",
		"worker_pool.redis_pool.redis_url":           " (string)",
		"worker_pool.redis_pool.namespace":           "berth_job_service_namespace (string)",
		"worker_pool.redis_pool.idle_timeout_second": "3600 (int)",
		"worker_pool.redis_pool.replica_acks":        "0 (int)",
		"job_loggers.len":                            "1",
		"job_loggers[0].name":                        "FILE (string)",
		"job_loggers[0].level":                       "INFO (string)",
		"job_loggers[0].settings.len":                "1",
		"job_loggers[0].settings.base_dir":           "/tmp/berth/job_logs (string)",
		"job_loggers[0].sweeper.duration":            "1 (int)",
		"job_loggers[0].sweeper.settings.len":        "1",
		"job_loggers[0].sweeper.settings.work_dir":   "/tmp/berth/job_logs (string)",
		"loggers.len":                                "1",
		"loggers[0].name":                            "STD_OUTPUT (string)",
		"loggers[0].level":                           "INFO (string)",
		"loggers[0].settings.len":                    "0",
		"loggers[0].sweeper":                         "<nil>",
		"max_retrieve_size_mb":                       "10 (int)",
		"core_url":                                   " (string)",
		"Secret":                                     " (string)",
		"plugins_dir":                                "./bin/plugins (string)",
		"shutdown_grace":                             "30s",
		"job_properties.len":                         "0",
		"plugin_config.len":                          "0",
		"Reattach.len":                               "0",
		"plugins.start_timeout":                      "10s",
		"plugins.restart_backoff_max":                "30s",
		"plugins.kill_timeout":                       "5s",
		"plugins.stop_grace":                         "5s",
		"plugins.probe_every":                        "10s",
		"plugins.probe_timeout":                      "5s",
		"plugins.probe_failures":                     "3 (int)",
		"plugins.gomaxprocs":                         "0 (int)",
		"plugins.job_timeout":                        "0s",
		"plugins.sha256.len":                         "0",
		"plugins.require_sha256":                     "false (bool)",
		"stats.success_ttl":                          "24h",
		"stats.stopped_ttl":                          "24h",
		"stats.error_ttl":                            "168h",
		"retry.backoff_base":                         "10s",
		"retry.backoff_max":                          "10m",
		"periodic.max_executions":                    "100 (int)",
		"hooks.backoff_base":                         "1s",
		"hooks.backoff_max":                          "5m",
		"hooks.timeout":                              "10s",
		"hooks.workers":                              "8 (int)",
		"hooks.rewrites.len":                         "0",
		"reaper.interval":                            "1m",
		"reaper.max_job_duration":                    "24h",
		"reaper.dead_after":                          "30s",
		"reaper.max_update_hours":                    "0 (int)",
		"reaper.max_dangling_hours":                  "0 (int)",
		"metric.enabled":                             "false (bool)",
		"metric.path":                                "/metrics (string)",
		"metric.port":                                "9090 (int)",
		"metric.namespace":                           "harbor (string)",
		"metric.subsystem":                           "jobservice (string)",
		"api.read_timeout":                           "30s",
		"api.write_timeout":                          "2m",
		"api.idle_timeout":                           "2m",
		"api.max_connections":                        "1024 (int)",
		"api.max_body_bytes":                         "1048576 (int)",
		"api.hide_redis_password":                    "false (bool)",
		"api.max_parameters_bytes":                   "65536 (int)",
		"api.max_concurrent_listings":                "4 (int)",
		"LoadWarnings.len":                           "0",
	}
	got := flatten(Default())
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %q: a default this test does not check; add it", k, got[k])
		}
	}

	t.Run("IsValid", func(t *testing.T) {
		t.Parallel()
		if err := Default().Validate(); err != nil {
			t.Fatalf("Default().Validate() = %v", err)
		}
	})

	t.Run("IsFreshEachCall", func(t *testing.T) {
		t.Parallel()
		want := Default()
		a := Default()
		a.JobLoggers[0].Settings[SettingBaseDir] = "/elsewhere"
		a.JobLoggers[0].Sweeper.Duration = 9
		a.Loggers[0].Settings["x"] = 1
		a.JobProperties["k"] = "v"
		assertConfig(t, Default(), want)
	})
}

func TestLoadWithoutFile(t *testing.T) {
	t.Parallel()
	got, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	assertConfig(t, got, Default())
}

// wantFull is testdata/full.yml as a Config, with the TLS paths given.
func wantFull(cert, key string) *Config {
	return &Config{
		Protocol:    "https",
		Port:        9443,
		BindAddress: "127.0.0.1",
		HTTPSConfig: HTTPSConfig{Cert: cert, Key: key, ClientCA: cert},
		WorkerPool: WorkerPool{
			Workers: 20,
			Backend: "redis",
			RedisPool: RedisPool{
				RedisURL:          "redis://:change-me@redis:6379/1",
				Namespace:         "berth_prod",
				IdleTimeoutSecond: 600,
				ReplicaAcks:       1,
			},
		},
		JobLoggers: []Logger{
			{Name: "STD_OUTPUT", Level: "WARNING", Settings: map[string]any{}},
			{
				Name:     "FILE",
				Level:    "DEBUG",
				Settings: map[string]any{"base_dir": "/var/log/berth/jobs"},
				Sweeper:  &Sweeper{Duration: 7, Settings: map[string]any{"work_dir": "/var/log/berth/jobs"}},
			},
			{Name: "REDIS", Level: "ERROR", Settings: map[string]any{"max_bytes": 2097152}},
		},
		Loggers: []Logger{
			{
				Name:     "FILE",
				Level:    "ERROR",
				Settings: map[string]any{"base_dir": "/var/log/berth"},
				Sweeper:  &Sweeper{Duration: 30, Settings: map[string]any{"work_dir": "/var/log/berth"}},
			},
			{Name: "STD_OUTPUT", Level: "DEBUG", Settings: map[string]any{}},
		},
		MaxRetrieveSizeMB: 20,
		CoreURL:           "http://core:8080",
		Secret:            "s3cr3t",
		PluginsDir:        "/usr/lib/berth/plugins",
		ShutdownGrace:     Duration(time.Minute),
		JobProperties:     map[string]string{"registry_url": "https://registry.example.com", "region": "eu-west"},
		PluginConfig: map[string]map[string]any{"scan": {
			"adapter_url": "http://scanner:8080", "token": map[string]any{"$env": "SCANNER_TOKEN"}}},
		Plugins: Plugins{
			StartTimeout:      Duration(20 * time.Second),
			RestartBackoffMax: Duration(time.Minute),
			KillTimeout:       Duration(15 * time.Second),
			StopGrace:         Duration(20 * time.Second),
			ProbeEvery:        Duration(5 * time.Second),
			ProbeTimeout:      Duration(2 * time.Second),
			ProbeFailures:     4,
			GOMAXPROCS:        4,
			JobTimeout:        Duration(2 * time.Hour),
			SHA256:            map[string]string{"demo": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			RequireSHA256:     true,
		},
		Stats: Stats{
			SuccessTTL: Duration(12 * time.Hour),
			StoppedTTL: Duration(6 * time.Hour),
			ErrorTTL:   Duration(720 * time.Hour),
		},
		Retry:    Retry{BackoffBase: Duration(5 * time.Second), BackoffMax: Duration(30 * time.Minute)},
		Periodic: Periodic{MaxExecutions: 50},
		Hooks: Hooks{
			BackoffBase: Duration(2 * time.Second),
			BackoffMax:  Duration(10 * time.Minute),
			Timeout:     Duration(5 * time.Second),
			Workers:     16,
			Rewrites:    []Rewrite{{From: "http://old-core:8080", To: "http://core:8080"}},
		},
		Reaper: Reaper{Interval: Duration(30 * time.Second), MaxJobDuration: Duration(48 * time.Hour), DeadAfter: Duration(45 * time.Second),
			MaxUpdateHours: 48, MaxDanglingHours: 200},
		Metric: Metric{Enabled: true, Path: "/prom", Port: 9091, Namespace: "berth", Subsystem: "jobs"},
		API: API{ReadTimeout: Duration(20 * time.Second), WriteTimeout: Duration(5 * time.Minute), IdleTimeout: Duration(time.Minute),
			MaxConnections: 4096, MaxBodyBytes: 2 << 20, HideRedisPassword: true,
			MaxParameterBytes: 128 << 10, MaxConcurrentListings: 8},
	}
}

func TestLoadFull(t *testing.T) {
	t.Parallel()

	t.Run("EveryKeyIsRead", func(t *testing.T) {
		t.Parallel()
		cert, key := tlsFiles(t)
		got, err := Load("testdata/full.yml", env(
			"JOB_SERVICE_HTTPS_CERT", cert, "JOB_SERVICE_HTTPS_KEY", key, "JOB_SERVICE_HTTPS_CLIENT_CA", cert, "CORE_SECRET", "s3cr3t", "SCANNER_TOKEN", "scanner-s3cret"))
		if err != nil {
			t.Fatal(err)
		}
		assertConfig(t, got, wantFull(cert, key))
	})

	t.Run("FileAloneHoldsTheTLSPaths", func(t *testing.T) {
		t.Parallel()
		c := Default()
		data, err := os.ReadFile("testdata/full.yml")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeYAML(data, c); err != nil {
			t.Fatal(err)
		}
		if c.HTTPSConfig.Cert != "/etc/berth/tls/server.crt" || c.HTTPSConfig.Key != "/etc/berth/tls/server.key" {
			t.Errorf("https_config = %+v, want the paths of testdata/full.yml", c.HTTPSConfig)
		}
	})

	t.Run("EveryValueDiffersFromItsDefault", func(t *testing.T) {
		// So that a key the loader ignored cannot pass for one it read.
		t.Parallel()
		cert, key := tlsFiles(t)
		full, def := flatten(wantFull(cert, key)), flatten(Default())
		for _, k := range slices.Sorted(maps.Keys(full)) {
			// Lists are compared whole, "redis" is the only backend,
			// Reattach comes from the environment only, and full.yml needs
			// no mapping from Harbor's file (no LoadWarnings).
			if strings.ContainsAny(k, "[") || k == "worker_pool.backend" || k == "Reattach.len" || k == "LoadWarnings.len" {
				continue
			}
			if d, ok := def[k]; ok && d == full[k] {
				t.Errorf("%s = %s in full.yml, the same as its default; pick another value", k, full[k])
			}
		}
	})

	t.Run("ShowsEveryKey", func(t *testing.T) {
		t.Parallel()
		data, err := os.ReadFile("testdata/full.yml")
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		shown := map[string]bool{}
		nodeKeys(doc.Content[0], "", shown)
		for _, k := range typeKeys(reflect.TypeFor[Config](), "") {
			if !shown[k] {
				t.Errorf("testdata/full.yml does not show %s", k)
			}
		}
		for _, k := range []string{
			"job_loggers[].settings.base_dir", "job_loggers[].settings.max_bytes",
			"job_loggers[].sweeper.settings.work_dir", "loggers[].settings.base_dir",
		} {
			if !shown[k] {
				t.Errorf("testdata/full.yml does not show %s", k)
			}
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		cert, key := tlsFiles(t)
		lookup := env("JOB_SERVICE_HTTPS_CERT", cert, "JOB_SERVICE_HTTPS_KEY", key, "JOB_SERVICE_HTTPS_CLIENT_CA", cert, "CORE_SECRET", "s3cr3t", "SCANNER_TOKEN", "scanner-s3cret")
		first, err := Load("testdata/full.yml", lookup)
		if err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "s3cr3t") {
			t.Errorf("the marshalled config holds a secret:\n%s", out)
		}
		second, err := Load(writeYAML(t, string(out)), lookup)
		if err != nil {
			t.Fatalf("%v\nmarshalled:\n%s", err, out)
		}
		assertConfig(t, second, first)
	})
}

// typeKeys lists every YAML key of t, list indexes written as "[]".
func typeKeys(t reflect.Type, key string) []string {
	switch {
	case t == durationType:
		return []string{key}
	case t.Kind() == reflect.Pointer:
		return typeKeys(t.Elem(), key)
	case t.Kind() == reflect.Slice:
		return typeKeys(t.Elem(), key+"[]")
	case t.Kind() == reflect.Struct:
		var keys []string
		for name, ft := range yamlFields(t) {
			keys = append(keys, typeKeys(ft, joinKey(key, name))...)
		}
		slices.Sort(keys)
		return keys
	default:
		return []string{key}
	}
}

// nodeKeys records every key path in n, list indexes written as "[]".
func nodeKeys(n *yaml.Node, key string, out map[string]bool) {
	out[key] = true
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			nodeKeys(n.Content[i+1], joinKey(key, n.Content[i].Value), out)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			nodeKeys(item, key+"[]", out)
		}
	}
}

func TestAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		bind string
		port int
		want string
	}{
		{"EveryInterface", "", 9444, ":9444"}, {"PortMin", "", 1, ":1"}, {"PortMax", "", 65535, ":65535"},
		{"Loopback", "127.0.0.1", 9444, "127.0.0.1:9444"},
		{"OneInterface", "10.0.0.5", 8080, "10.0.0.5:8080"},
		{"IPv6Loopback", "::1", 9444, "[::1]:9444"},
		{"IPv6Bracketed", "[::1]", 9444, "[::1]:9444"},
		{"IPv6Zone", "fe80::1%eth0", 9444, "[fe80::1%eth0]:9444"},
		{"HostName", "localhost", 9444, "localhost:9444"},
		{"AnyIPv4", "0.0.0.0", 9444, "0.0.0.0:9444"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.BindAddress, c.Port = tc.bind, tc.port
			if got := c.Addr(); got != tc.want {
				t.Errorf("Addr() = %q, want %q", got, tc.want)
			}
			if tc.bind != "" {
				if err := c.Validate(); err != nil {
					t.Errorf("Validate() with bind_address %q: %v", tc.bind, err)
				}
			}
		})
	}
}

func TestRedactedRedisURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"Empty", "", ""},
		{"NoPassword", "redis://redis:6379/0", "redis://redis:6379/0"},
		{"LoneUserInfoIsPassword", "redis://s3cr3t@redis:6379", "redis://xxxxx@redis:6379"},
		{"Password", "redis://:s3cr3t@redis:6379/0", "redis://:xxxxx@redis:6379/0"},
		{"UserAndPassword", "rediss://berth:s3cr3t@redis:6380/2", "rediss://berth:xxxxx@redis:6380/2"},
		{"PasswordWithAt", "redis://:p@ss@redis:6379", "redis://:xxxxx@redis:6379"},
		{"PasswordWithSlash", "redis://:pa/ss@redis:6379", "redis://:xxxxx@redis:6379"},
		{"Sentinel", "redis+sentinel://:s3cr3t@h1:26379,h2:26379/mymaster/1", "redis+sentinel://:xxxxx@h1:26379,h2:26379/mymaster/1"},
		{"QueryPassword", "redis+sentinel://h1:26379/m?sentinel_password=s3cr3t&db=1", "redis+sentinel://h1:26379/m?sentinel_password=xxxxx&db=1"},
		{"Unix", "unix://:s3cr3t@/run/redis.sock?db=1", "unix://:xxxxx@/run/redis.sock?db=1"},
		{"LegacyNoPassword", "redis:6379,100,,0", "redis:6379,100,,0"},
		{"LegacyHostOnly", "redis:6379", "redis:6379"},
		{"LegacyPassword", "redis:6379,100,s3cr3t,0", "redis:6379,100,xxxxx,0"},
		{"LegacyPasswordNoDB", "redis:6379,100,s3cr3t", "redis:6379,100,xxxxx"},
		{"LegacyPasswordWithCommas", "redis:6379,100,s3,cr,3t,0", "redis:6379,100,xxxxx,0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.WorkerPool.RedisPool.RedisURL = tc.url
			got := c.RedactedRedisURL()
			if got != tc.want {
				t.Errorf("RedactedRedisURL(%q) = %q, want %q", tc.url, got, tc.want)
			}
			if strings.Contains(got, "s3") || strings.Contains(got, "ss@") {
				t.Errorf("RedactedRedisURL(%q) = %q still shows the password", tc.url, got)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		redisURL string
		secret   string
		want     []string
	}{
		{"EmbeddedAndNoSecret", "", "", []string{"CORE_SECRET is empty"}},
		{"EmbeddedOnly", "", "s3cr3t", nil},
		{"NoSecretOnly", "redis://redis:6379", "", []string{"CORE_SECRET is empty"}},
		{"None", "redis://redis:6379", "s3cr3t", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.WorkerPool.RedisPool.RedisURL, c.Secret = tc.redisURL, tc.secret
			got := c.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("Warnings() = %q, want %d warnings", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("Warnings()[%d] = %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}
