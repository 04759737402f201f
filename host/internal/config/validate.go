package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/berth-dev/berth/host/internal/redisx"
)

// fieldError is one problem with one key.
type fieldError struct {
	key  string // e.g. "worker_pool.workers", "job_loggers[1].settings.base_dir"
	line int    // line in the YAML file, if known
	env  string // env variable the value came from, if any
	msg  string // what is wrong and what to do
}

func (e *fieldError) Error() string {
	switch {
	case e.env != "":
		return fmt.Sprintf("%s (from env %s): %s", e.key, e.env, e.msg)
	case e.line > 0:
		return fmt.Sprintf("%s (line %d): %s", e.key, e.line, e.msg)
	default:
		return e.key + ": " + e.msg
	}
}

// Validate reports every problem of c at once, joined with errors.Join, each
// naming its key, e.g. "worker_pool.workers: must be between 1 and 1024, got 0".
// It reads the HTTPS certificate and key when the protocol is "https" and
// changes nothing. An empty Secret is not a problem here (see Warnings).
func (c *Config) Validate() error {
	var v checker

	v.oneOf("protocol", c.Protocol, "http", "https")
	v.intRange("port", c.Port, 1, 65535)
	v.bindAddress("bind_address", c.BindAddress)
	if c.Protocol == "https" {
		v.readableFile("https_config.cert", c.HTTPSConfig.Cert, "JOB_SERVICE_HTTPS_CERT")
		v.readableFile("https_config.key", c.HTTPSConfig.Key, "JOB_SERVICE_HTTPS_KEY")
		if c.HTTPSConfig.ClientCA != "" {
			v.readableFile("https_config.client_ca", c.HTTPSConfig.ClientCA, "JOB_SERVICE_HTTPS_CLIENT_CA")
		}
	}

	v.intRange("worker_pool.workers", c.WorkerPool.Workers, 1, 1024)
	if c.WorkerPool.Backend != "redis" {
		v.add("worker_pool.backend", `only "redis" is supported, got %q`, c.WorkerPool.Backend)
	}
	rp := c.WorkerPool.RedisPool
	v.redisURL("worker_pool.redis_pool.redis_url", rp.RedisURL)
	switch {
	case rp.Namespace == "":
		v.add("worker_pool.redis_pool.namespace", "must not be empty; every Redis key of Berth is put under it")
	case strings.ContainsFunc(rp.Namespace, func(r rune) bool { return unicode.IsSpace(r) || r == '{' || r == '}' }):
		v.add("worker_pool.redis_pool.namespace", "must hold no whitespace and no braces (Berth adds the braces), got %q", rp.Namespace)
	}
	v.intMin("worker_pool.redis_pool.idle_timeout_second", rp.IdleTimeoutSecond, 0)

	v.loggers("job_loggers", c.JobLoggers, true)
	v.loggers("loggers", c.Loggers, false)
	v.intRange("max_retrieve_size_mb", c.MaxRetrieveSizeMB, 1, 1024)

	if c.CoreURL != "" {
		v.httpURL("core_url", c.CoreURL)
	}
	if c.PluginsDir == "" {
		v.add("plugins_dir", "must not be empty; name the directory that holds the plugin binaries")
	}
	v.durationRange("shutdown_grace", c.ShutdownGrace, 0, time.Hour)
	if _, ok := c.JobProperties[""]; ok {
		v.add("job_properties", "a property needs a non-empty name")
	}

	v.positive("plugins.start_timeout", c.Plugins.StartTimeout)
	v.positive("plugins.restart_backoff_max", c.Plugins.RestartBackoffMax)
	v.positive("plugins.kill_timeout", c.Plugins.KillTimeout)
	v.positive("plugins.stop_grace", c.Plugins.StopGrace)
	v.intRange("worker_pool.redis_pool.replica_acks", c.WorkerPool.RedisPool.ReplicaAcks, 0, 16)
	v.positive("plugins.probe_every", c.Plugins.ProbeEvery)
	v.positive("plugins.probe_timeout", c.Plugins.ProbeTimeout)
	v.intRange("plugins.probe_failures", c.Plugins.ProbeFailures, 1, 100)
	v.intMin("plugins.gomaxprocs", c.Plugins.GOMAXPROCS, 0)
	v.durationRange("plugins.job_timeout", c.Plugins.JobTimeout, 0, 0)

	v.durationRange("stats.success_ttl", c.Stats.SuccessTTL, time.Minute, 0)
	v.durationRange("stats.stopped_ttl", c.Stats.StoppedTTL, time.Minute, 0)
	v.durationRange("stats.error_ttl", c.Stats.ErrorTTL, time.Minute, 0)

	v.durationRange("retry.backoff_base", c.Retry.BackoffBase, time.Second, 0)
	v.backoffMax("retry.backoff_max", c.Retry.BackoffMax, c.Retry.BackoffBase, "retry.backoff_base")

	v.intMin("periodic.max_executions", c.Periodic.MaxExecutions, 1)

	v.positive("hooks.backoff_base", c.Hooks.BackoffBase)
	v.backoffMax("hooks.backoff_max", c.Hooks.BackoffMax, c.Hooks.BackoffBase, "hooks.backoff_base")
	v.positive("hooks.timeout", c.Hooks.Timeout)
	v.intRange("hooks.workers", c.Hooks.Workers, 1, 256)
	seen := map[string]int{}
	for i, rw := range c.Hooks.Rewrites {
		key := fmt.Sprintf("hooks.rewrites[%d]", i)
		v.httpURL(key+".from", rw.From)
		v.httpURL(key+".to", rw.To)
		if j, dup := seen[rw.From]; dup && rw.From != "" {
			v.add(key+".from", "%q is already rewritten by hooks.rewrites[%d]; keep one", rw.From, j)
		}
		seen[rw.From] = i
	}

	v.durationRange("api.read_timeout", c.API.ReadTimeout, time.Second, 0)
	v.durationRange("api.write_timeout", c.API.WriteTimeout, time.Second, 0)
	v.durationRange("api.idle_timeout", c.API.IdleTimeout, time.Second, 0)
	v.intRange("api.max_connections", c.API.MaxConnections, 16, 1<<20)
	v.intRange("api.max_body_bytes", c.API.MaxBodyBytes, 4<<10, 1<<30)
	v.intRange("api.max_parameters_bytes", c.API.MaxParameterBytes, 1<<10, c.API.MaxBodyBytes)
	v.intRange("api.max_concurrent_listings", c.API.MaxConcurrentListings, 1, 1024)
	v.positive("reaper.interval", c.Reaper.Interval)
	v.durationRange("reaper.max_job_duration", c.Reaper.MaxJobDuration, time.Minute, 0)
	v.durationRange("reaper.dead_after", c.Reaper.DeadAfter, 6*time.Second, 0)
	v.intRange("reaper.max_update_hours", c.Reaper.MaxUpdateHours, 0, maxHours)
	v.intRange("reaper.max_dangling_hours", c.Reaper.MaxDanglingHours, 0, maxHours)

	m := c.Metric
	if !strings.HasPrefix(m.Path, "/") || strings.ContainsAny(m.Path, " \t\r\n?#") {
		v.add("metric.path", `must be a URL path such as "/metrics", got %q`, m.Path)
	}
	v.intRange("metric.port", m.Port, 1, 65535)
	if m.Enabled && m.Port == c.Port {
		v.add("metric.port", "must differ from port (%d), which the API listens on", c.Port)
	}
	v.metricName("metric.namespace", m.Namespace)
	v.metricName("metric.subsystem", m.Subsystem)

	return errors.Join(v.errs...)
}

var (
	levels      = []string{"DEBUG", "INFO", "WARNING", "ERROR", "FATAL"}
	loggerNames = []string{LoggerFile, LoggerRedis, LoggerStdOutput}
	// settingsOf lists the settings each backend knows; any other is a typo.
	settingsOf = map[string][]string{
		LoggerStdOutput: nil,
		LoggerFile:      {SettingBaseDir},
		LoggerRedis:     {SettingMaxBytes},
	}
)

const maxRedisLogBytes = 512 << 20 // the largest Redis string

// checker collects problems.
type checker struct{ errs []error }

func (v *checker) add(key, format string, args ...any) {
	v.errs = append(v.errs, &fieldError{key: key, msg: fmt.Sprintf(format, args...)})
}

func (v *checker) oneOf(key, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.add(key, "must be %s, got %q", quoteList(allowed), got)
	}
}

func (v *checker) intRange(key string, got, lo, hi int) {
	if got < lo || got > hi {
		v.add(key, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (v *checker) intMin(key string, got, lo int) {
	if got < lo {
		v.add(key, "must be at least %d, got %d", lo, got)
	}
}

func (v *checker) positive(key string, got Duration) {
	if got <= 0 {
		v.add(key, "must be more than 0, like 10s, got %s", got)
	}
}

// durationRange checks lo <= got, and got <= hi unless hi is 0.
func (v *checker) durationRange(key string, got Duration, lo, hi time.Duration) {
	switch {
	case hi > 0 && (got.Std() < lo || got.Std() > hi):
		v.add(key, "must be between %s and %s, got %s", Duration(lo), Duration(hi), got)
	case got.Std() < lo:
		v.add(key, "must be at least %s, got %s", Duration(lo), got)
	}
}

func (v *checker) backoffMax(key string, got, base Duration, baseKey string) {
	if got < base {
		v.add(key, "must be at least %s (%s), got %s", baseKey, base, got)
	}
}

func (v *checker) readableFile(key, path, env string) {
	if path == "" {
		v.add(key, `is required when protocol is "https"; set it in the file or with env %s`, env)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		v.add(key, "cannot read the file: %v; fix the path (env %s overrides it)", err, env)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		v.add(key, "%q is not a regular file; name the PEM file itself (env %s overrides it)", path, env)
	}
}

// redisURL checks a Redis URL with the parser that will use it; empty
// selects the embedded backend. redisx's errors show the URL redacted and
// quote no password.
func (v *checker) redisURL(key, raw string) {
	if raw == "" {
		return
	}
	if _, err := redisx.ParseURL(raw); err != nil {
		msg := strings.TrimPrefix(err.Error(), "redisx: ")
		v.add(key, "%s", strings.TrimPrefix(msg, "Redis URL ")) // the key says as much
	}
}

// bindAddress checks a listen address without its port: empty (every
// interface), an IP address ("10.0.0.5", "::1", "[::1]", "fe80::1%eth0") or
// a host name ("localhost").
func (v *checker) bindAddress(key, addr string) {
	if addr == "" {
		return
	}
	if inner, ok := strings.CutPrefix(addr, "["); ok && strings.HasSuffix(inner, "]") {
		if inner = strings.TrimSuffix(inner, "]"); validIP(inner) && strings.Contains(inner, ":") {
			return // "[::1]": brackets hold an IPv6 address only
		}
	} else if validIP(addr) || isHostName(addr) {
		return
	}
	if h, port, err := net.SplitHostPort(addr); err == nil && isWholeNumber(port) && (validIP(h) || isHostName(h)) {
		v.add(key, "must be an address without a port (the port is port, env JOB_SERVICE_PORT), got %q", addr)
		return
	}
	v.add(key, `must be an IP address such as "127.0.0.1" or a host name, or empty for every interface, got %q`, addr)
}

// validIP reports whether s is an IP address, IPv6 with an optional zone
// ("fe80::1%eth0").
func validIP(s string) bool {
	ip, zone, hasZone := strings.Cut(s, "%")
	return net.ParseIP(ip) != nil && (!hasZone || zone != "" && strings.Contains(ip, ":"))
}

// isHostName reports whether s is a DNS name: dot-separated labels of
// letters, digits and inner hyphens.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// metricName checks a Prometheus name part: empty, or a letter or '_'
// followed by letters, digits and '_'.
func (v *checker) metricName(key, s string) {
	for i, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '_' || i > 0 && '0' <= r && r <= '9') {
			v.add(key, "must be empty or a Prometheus name part (letters, digits and '_', not starting with a digit), got %q", s)
			return
		}
	}
}

func (v *checker) httpURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(key, "must be an absolute http:// or https:// URL such as http://core:8080, got %q", raw)
	}
}

// loggers checks one list of loggers; REDIS is a job log backend only.
func (v *checker) loggers(key string, ls []Logger, jobLogs bool) {
	if len(ls) == 0 {
		v.add(key, "needs at least one logger; remove the key to get the default, or list one (%s)", strings.Join(loggerNames, ", "))
		return
	}
	first := map[string]int{}
	for i, l := range ls {
		lkey := fmt.Sprintf("%s[%d]", key, i)
		name := strings.ToUpper(l.Name)
		known, ok := settingsOf[name]
		switch {
		case !ok:
			v.add(lkey+".name", "unknown logger %q; use one of %s", l.Name, strings.Join(loggerNames, ", "))
		case name == LoggerRedis && !jobLogs:
			v.add(lkey+".name", "REDIS keeps job logs only; use it under job_loggers")
		default:
			if j, dup := first[name]; dup {
				v.add(lkey+".name", "%s is already configured at %s[%d]; keep one", name, key, j)
			} else {
				first[name] = i
			}
		}
		if !slices.Contains(levels, strings.ToUpper(l.Level)) {
			v.add(lkey+".level", "must be one of %s, got %q", strings.Join(levels, ", "), l.Level)
		}
		if ok {
			v.settings(lkey+".settings", l.Settings, known, name)
		}
		switch name {
		case LoggerFile:
			v.nonEmptyString(lkey+".settings."+SettingBaseDir, l.Settings[SettingBaseDir], "the directory the log files are written to")
		case LoggerRedis:
			if n, ok := asInt(l.Settings[SettingMaxBytes]); !ok || n < 1 || n > maxRedisLogBytes {
				v.add(lkey+".settings."+SettingMaxBytes, "must be a whole number of bytes between 1 and %d, got %s", maxRedisLogBytes, show(l.Settings[SettingMaxBytes]))
			}
		}
		if s := l.Sweeper; s != nil {
			skey := lkey + ".sweeper"
			if name != LoggerFile {
				v.add(skey, "only FILE loggers have a sweeper; remove it")
				continue
			}
			v.intMin(skey+".duration", s.Duration, 1)
			v.settings(skey+".settings", s.Settings, []string{SettingWorkDir}, "the sweeper")
			v.nonEmptyString(skey+".settings."+SettingWorkDir, s.Settings[SettingWorkDir], "the directory swept")
		}
	}
}

func (v *checker) settings(key string, settings map[string]any, known []string, owner string) {
	for _, k := range sortedKeys(settings) {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				v.add(key+"."+k, "unknown setting; %s has no settings", owner)
			} else {
				v.add(key+"."+k, "unknown setting; %s knows %s", owner, strings.Join(known, ", "))
			}
		}
	}
}

func (v *checker) nonEmptyString(key string, got any, what string) {
	if s, ok := got.(string); !ok || s == "" {
		v.add(key, "must be a non-empty string naming %s, got %s", what, show(got))
	}
}

// show renders a settings value for a message.
func show(x any) string {
	switch x := x.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprintf("%v", x)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	if len(q) == 2 {
		return q[0] + " or " + q[1]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
