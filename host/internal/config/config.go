package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/host/internal/redisx"

	"github.com/berth-dev/berth/sdk/proto"
)

// Config is Berth's whole configuration. The yaml tags are the file format:
// Harbor's job service keys keep their names, Berth's own keys sit beside them.
type Config struct {
	// Protocol the API is served with: "http" or "https".
	// Env JOB_SERVICE_PROTOCOL.
	Protocol string `yaml:"protocol"`
	// Port the API listens on, 1..65535. Env JOB_SERVICE_PORT.
	Port int `yaml:"port"`
	// BindAddress is the IP address (or host name) the API listens on;
	// empty means every interface. "127.0.0.1" keeps it on loopback.
	// Env BERTH_BIND_ADDRESS; set but empty, it means every interface.
	BindAddress string `yaml:"bind_address"`
	// HTTPSConfig names the certificate and key used when Protocol is "https".
	HTTPSConfig HTTPSConfig `yaml:"https_config"`
	// WorkerPool sizes the pool and names its Redis.
	WorkerPool WorkerPool `yaml:"worker_pool"`
	// JobLoggers are the backends that jobs log to.
	JobLoggers []Logger `yaml:"job_loggers"`
	// Loggers are the backends the service itself logs to.
	Loggers []Logger `yaml:"loggers"`
	// MaxRetrieveSizeMB bounds what the job log getter returns: at most the
	// last n MiB of a job's log, 1..1024.
	MaxRetrieveSizeMB int `yaml:"max_retrieve_size_mb"`
	// CoreURL is Harbor core's base URL; optional. Env CORE_URL.
	CoreURL string `yaml:"core_url"`
	// Secret is the shared secret of the API's Authorization header. It is
	// read from env CORE_SECRET only, never from the file. It may be empty:
	// the API then refuses every call that needs it.
	Secret string `yaml:"-"`
	// PluginsDir is the directory scanned for plugin binaries.
	// Env BERTH_PLUGINS_DIR.
	PluginsDir string `yaml:"plugins_dir"`
	// ShutdownGrace is how long running jobs get to finish on shutdown, 0..1h.
	// Env BERTH_SHUTDOWN_GRACE.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// JobProperties are handed to every job, which can read but not change them.
	JobProperties map[string]string `yaml:"job_properties"`
	// PluginConfig holds each plugin's own settings, under the plugin's
	// file name in plugins_dir (or one of its job names); a section goes
	// to that plugin only, at its start. A value {$env: NAME} or
	// {$file: /path} is read from the environment or a file. It is never
	// logged or shown by the API.
	PluginConfig map[string]map[string]any `yaml:"plugin_config"`
	// Reattach lists plugins started by hand in debug mode, which the host
	// attaches to instead of launching. Env BERTH_PLUGIN_REATTACH only.
	Reattach map[string]proto.Reattach `yaml:"-"`
	// Plugins tunes how plugin processes are started, restarted and stopped.
	Plugins Plugins `yaml:"plugins"`
	// Stats sets how long final job stats are kept.
	Stats Stats `yaml:"stats"`
	// Retry sets the backoff between runs of a failed job.
	Retry Retry `yaml:"retry"`
	// Periodic tunes periodic policies.
	Periodic Periodic `yaml:"periodic"`
	// Hooks tunes status hook delivery.
	Hooks Hooks `yaml:"hooks"`
	// Reaper tunes the sweep that re-queues jobs of dead hosts.
	Reaper Reaper `yaml:"reaper"`
	// Metric is Harbor's Prometheus endpoint, on a port of its own (see
	// package metrics for what it serves).
	Metric Metric `yaml:"metric"`
	// API bounds what a client of the REST API may cost the host.
	API API `yaml:"api"`
	// LoadWarnings are what Load changed or left unused to accept Harbor's
	// file: Harbor's DB job logger run as REDIS, the Redis URL's
	// idle_timeout_seconds winning over idle_timeout_second, and the like.
	// Warnings returns them, and the host logs them once at start.
	LoadWarnings []string `yaml:"-"`
}

// API bounds the REST API's connections and requests, so that no client
// (with the secret or without) can exhaust the host.
type API struct {
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response (a job log of
	// max_retrieve_size_mb to a slow client included).
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle that long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnections caps the connections served at once; more wait to be
	// accepted.
	MaxConnections int `yaml:"max_connections"`
	// MaxBodyBytes bounds a request body; a larger one is a 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxParameterBytes bounds a submission's parameters as JSON; larger
	// ones are a 400.
	MaxParameterBytes int `yaml:"max_parameters_bytes"`
	// MaxConcurrentListings bounds the listings served at once (each
	// holds a page of stats in memory); more wait for a turn.
	MaxConcurrentListings int `yaml:"max_concurrent_listings"`
	// HideRedisPassword takes the password out of the Redis URL that
	// GET /api/v1/config shows (to callers with the secret only). Harbor
	// core dials that URL for its job-queue dashboard, so a Harbor
	// deployment that hides it loses the dashboard unless core can reach
	// Redis without a password.
	HideRedisPassword bool `yaml:"hide_redis_password"`
}

// HTTPSConfig holds the TLS files used when the protocol is "https". Cert
// and Key must be readable files then. Env JOB_SERVICE_HTTPS_CERT,
// JOB_SERVICE_HTTPS_KEY, JOB_SERVICE_HTTPS_CLIENT_CA.
type HTTPSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ClientCA, when set, is a PEM file of the CAs whose client
	// certificates the API requires: a caller without one is refused in
	// the TLS handshake (Harbor's internal TLS with client verification).
	ClientCA string `yaml:"client_ca"`
}

// WorkerPool is the gocraft/work pool.
type WorkerPool struct {
	// Workers is the pool's concurrency, 1..1024. Env JOB_SERVICE_POOL_WORKERS.
	Workers int `yaml:"workers"`
	// Backend must be "redis". Env JOB_SERVICE_POOL_BACKEND.
	Backend string `yaml:"backend"`
	// RedisPool says which Redis to use.
	RedisPool RedisPool `yaml:"redis_pool"`
}

// RedisPool says which Redis holds the queue, the stats and the logs.
type RedisPool struct {
	// RedisURL is one of redis://, rediss://, redis+sentinel://h1:p1,h2:p2/master[/db],
	// unix:// or Harbor's legacy "host:port[,weight,password,db]". Empty
	// selects the embedded in-memory backend, whose jobs do not survive a
	// restart. Env JOB_SERVICE_POOL_REDIS_URL; set but empty, it also selects
	// the embedded backend.
	RedisURL string `yaml:"redis_url"`
	// Namespace prefixes every key; no whitespace, no braces.
	// Env JOB_SERVICE_POOL_REDIS_NAMESPACE.
	Namespace string `yaml:"namespace"`
	// IdleTimeoutSecond closes pooled connections idle that long; 0 never
	// does. Env JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND (Harbor's
	// name) or JOB_SERVICE_POOL_REDIS_IDLE_CONN_TIMEOUT (Berth's older one).
	// A Redis URL's ?idle_timeout_seconds=N wins over it, as in Harbor
	// (whose installer writes both): Load then sets it to N.
	IdleTimeoutSecond int `yaml:"idle_timeout_second"`
	// ReplicaAcks, when above 0, makes every change to a job wait until
	// that many replicas have it (Redis WAIT, at most a second) before it
	// counts as done: a submission is then only accepted once a replica
	// holds it, and a Sentinel failover cannot lose it. A change that is
	// not confirmed in time is an error (a submission answers 500 and may
	// exist: submit it unique to retry safely). 0 (default) waits for no
	// replica.
	ReplicaAcks int `yaml:"replica_acks"`
}

// Logger is one log backend.
type Logger struct {
	// Name is STD_OUTPUT, FILE or REDIS (job logs only). Read
	// case-insensitively, stored upper-case. Harbor's DB (job logs in its
	// database) is read as REDIS, with a warning.
	Name string `yaml:"name"`
	// Level is DEBUG, INFO, WARNING, ERROR or FATAL. Read case-insensitively,
	// stored upper-case.
	Level string `yaml:"level"`
	// Settings are the backend's own: base_dir for FILE, max_bytes for REDIS.
	// After Load they are filled and typed: see BaseDir and MaxBytes.
	Settings map[string]any `yaml:"settings"`
	// Sweeper deletes old log files; FILE only. Nil: logs are never swept.
	Sweeper *Sweeper `yaml:"sweeper"`
}

// Sweeper deletes FILE logs older than Duration days from settings.work_dir.
type Sweeper struct {
	// Duration is the age in days after which a log file is deleted, >= 1.
	Duration int `yaml:"duration"`
	// Settings holds work_dir, the directory swept (default: the logger's base_dir).
	Settings map[string]any `yaml:"settings"`
}

// Plugins tunes the plugin processes.
type Plugins struct {
	// StartTimeout bounds a plugin's start and Describe call.
	StartTimeout Duration `yaml:"start_timeout"`
	// RestartBackoffMax caps the backoff between restarts of a crashed plugin.
	RestartBackoffMax Duration `yaml:"restart_backoff_max"`
	// KillTimeout is how long a plugin gets to exit before it is killed.
	KillTimeout Duration `yaml:"kill_timeout"`
	// StopGrace is how long a job told to end (stop, cancel, lost lease)
	// gets to return before its run is cancelled.
	StopGrace Duration `yaml:"stop_grace"`
	// ProbeEvery is how often each plugin process is asked whether it
	// answers; after ProbeFailures unanswered probes in a row (each
	// bounded by ProbeTimeout) it is reported unresponsive, killed and
	// restarted.
	ProbeEvery    Duration `yaml:"probe_every"`
	ProbeTimeout  Duration `yaml:"probe_timeout"`
	ProbeFailures int      `yaml:"probe_failures"`
	// GOMAXPROCS is set in each plugin's environment; 0 leaves it to Go.
	GOMAXPROCS int `yaml:"gomaxprocs"`
	// JobTimeout bounds one run of any job; 0 means no bound.
	JobTimeout Duration `yaml:"job_timeout"`
	// SHA256 pins plugin files (by file name in plugins_dir) to their
	// SHA-256 (hex, as sha256sum prints it): a file that differs is left
	// out, also when it is restarted, and the host runs the very file it
	// checked.
	SHA256 map[string]string `yaml:"sha256,omitempty"`
	// RequireSHA256 leaves out every plugin file without a pin.
	RequireSHA256 bool `yaml:"require_sha256"`
}

// Stats sets how long a job's stats are kept once final.
type Stats struct {
	SuccessTTL Duration `yaml:"success_ttl"`
	StoppedTTL Duration `yaml:"stopped_ttl"`
	ErrorTTL   Duration `yaml:"error_ttl"`
}

// Retry is the exponential backoff between runs of a failed job.
type Retry struct {
	BackoffBase Duration `yaml:"backoff_base"`
	BackoffMax  Duration `yaml:"backoff_max"`
}

// Periodic tunes periodic policies.
type Periodic struct {
	// MaxExecutions is how many executions are kept per policy.
	MaxExecutions int `yaml:"max_executions"`
}

// Hooks tunes status hook delivery.
type Hooks struct {
	// BackoffBase and BackoffMax bound the exponential backoff between tries.
	BackoffBase Duration `yaml:"backoff_base"`
	BackoffMax  Duration `yaml:"backoff_max"`
	// Timeout bounds one hook request.
	Timeout Duration `yaml:"timeout"`
	// Workers is how many deliveries run at once, 1..256.
	Workers int `yaml:"workers"`
	// Rewrites change a hook URL's base at delivery time (core moved), so
	// stored jobs need no change.
	Rewrites []Rewrite `yaml:"rewrites"`
}

// Rewrite replaces the prefix From of a hook URL with To. Both are
// absolute http(s) URLs.
type Rewrite struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Reaper tunes the sweep that finds jobs whose host died.
type Reaper struct {
	// Interval between sweeps.
	Interval Duration `yaml:"interval"`
	// MaxJobDuration: a running job that shows no progress (start or
	// check-in) for longer is marked Error. Env MAX_JOB_DURATION_SECONDS
	// (Harbor's, whole seconds).
	MaxJobDuration Duration `yaml:"max_job_duration"`
	// DeadAfter: a worker pool whose heartbeat is older is taken as dead
	// and its jobs are queued again, >= 6s (gocraft/work beats every 5s).
	// It is also the lease of a running job: the host running it renews the
	// lease every third of it, gives the run up when it could not renew it
	// for most of it, and a job whose lease expired is queued again by the
	// reaper.
	DeadAfter Duration `yaml:"dead_after"`
	// MaxUpdateHours is Harbor's name for MaxJobDuration, in hours: when
	// not 0, Load sets MaxJobDuration from it. Giving both with different
	// values is an error.
	MaxUpdateHours int `yaml:"max_update_hours"`
	// MaxDanglingHours is Harbor's bound on executions left Running in
	// Harbor core's database. Berth has no such executions: it is read,
	// checked and otherwise unused (Warnings says so when it is not 0).
	MaxDanglingHours int `yaml:"max_dangling_hours"`
}

// Metric is Harbor's metric section: a Prometheus endpoint on its own port.
type Metric struct {
	Enabled bool `yaml:"enabled"`
	// Path is the endpoint's URL path, starting with "/".
	Path string `yaml:"path"`
	// Port is the endpoint's port, 1..65535, not the API's.
	Port int `yaml:"port"`
	// Namespace and Subsystem prefix every metric name, as
	// <namespace>_<subsystem>_<name>; either may be empty. Env
	// METRIC_NAMESPACE and METRIC_SUBSYSTEM (Harbor's; set but empty, they
	// empty the prefix).
	Namespace string `yaml:"namespace"`
	Subsystem string `yaml:"subsystem"`
}

// Logger backend names.
const (
	LoggerStdOutput = "STD_OUTPUT"
	LoggerFile      = "FILE"
	LoggerRedis     = "REDIS" // job logs kept in Redis, readable from any host
)

// Setting keys of the logger backends and the FILE sweeper.
const (
	SettingBaseDir  = "base_dir"  // FILE
	SettingMaxBytes = "max_bytes" // REDIS
	SettingWorkDir  = "work_dir"  // FILE sweeper
)

// Defaults that Default and applyDefaults share.
const (
	defaultLevel          = "INFO"
	defaultJobLogDir      = "/tmp/berth/job_logs"
	defaultServiceLogDir  = "/tmp/berth/logs"
	defaultRedisLogMaxLen = 1 << 20 // bytes
	defaultSweepDays      = 1
)

// Default returns a Config holding every default. Each call returns a new
// value that the caller may change.
func Default() *Config {
	c := &Config{
		Protocol: "http",
		Port:     9444,
		WorkerPool: WorkerPool{
			Workers: 10,
			Backend: "redis",
			RedisPool: RedisPool{
				RedisURL:          "", // embedded in-memory backend
				Namespace:         "berth_job_service_namespace",
				IdleTimeoutSecond: 3600,
			},
		},
		JobLoggers: []Logger{{
			Name:    LoggerFile,
			Sweeper: &Sweeper{Duration: defaultSweepDays},
		}},
		Loggers:           []Logger{{Name: LoggerStdOutput}},
		MaxRetrieveSizeMB: 10,
		PluginsDir:        "./bin/plugins",
		ShutdownGrace:     Duration(30 * time.Second),
		Plugins: Plugins{
			StartTimeout:      Duration(10 * time.Second),
			RestartBackoffMax: Duration(30 * time.Second),
			KillTimeout:       Duration(5 * time.Second),
			StopGrace:         Duration(5 * time.Second),
			ProbeEvery:        Duration(10 * time.Second),
			ProbeTimeout:      Duration(5 * time.Second),
			ProbeFailures:     3,
		},
		Stats: Stats{
			SuccessTTL: Duration(24 * time.Hour),
			StoppedTTL: Duration(24 * time.Hour),
			ErrorTTL:   Duration(7 * 24 * time.Hour),
		},
		Retry: Retry{
			BackoffBase: Duration(10 * time.Second),
			BackoffMax:  Duration(10 * time.Minute),
		},
		Periodic: Periodic{MaxExecutions: 100},
		Hooks: Hooks{
			BackoffBase: Duration(time.Second),
			BackoffMax:  Duration(5 * time.Minute),
			Timeout:     Duration(10 * time.Second),
			Workers:     8,
		},
		API: API{
			ReadTimeout:           Duration(30 * time.Second),
			WriteTimeout:          Duration(2 * time.Minute),
			IdleTimeout:           Duration(2 * time.Minute),
			MaxConnections:        1024,
			MaxBodyBytes:          1 << 20,
			MaxParameterBytes:     64 << 10,
			MaxConcurrentListings: 4,
		},
		Reaper: Reaper{
			Interval:       Duration(time.Minute),
			MaxJobDuration: Duration(24 * time.Hour),
			DeadAfter:      Duration(30 * time.Second),
		},
		// Harbor's defaults (harbor.yml) and the names its installer gives.
		Metric: Metric{Path: "/metrics", Port: 9090, Namespace: "harbor", Subsystem: "jobservice"},
	}
	applyDefaults(c)
	return c
}

// applyDefaults fills what a file or env may leave out inside lists (a
// logger's level and settings) and normalises spelling. Top-level values
// need no filling here: Load decodes the file over Default, so a key that is
// absent keeps its default and a key set to 0 stays 0 for Validate to judge.
// It is idempotent.
func applyDefaults(c *Config) {
	if c.JobProperties == nil {
		c.JobProperties = map[string]string{}
	}
	if len(c.Hooks.Rewrites) == 0 {
		c.Hooks.Rewrites = nil
	}
	for i := range c.JobLoggers {
		applyLoggerDefaults(&c.JobLoggers[i], defaultJobLogDir)
	}
	for i := range c.Loggers {
		applyLoggerDefaults(&c.Loggers[i], defaultServiceLogDir)
	}
}

func applyLoggerDefaults(l *Logger, baseDir string) {
	l.Name = strings.ToUpper(strings.TrimSpace(l.Name))
	l.Level = strings.ToUpper(strings.TrimSpace(l.Level))
	if l.Level == "" {
		l.Level = defaultLevel
	}
	if l.Settings == nil {
		l.Settings = map[string]any{}
	}
	switch l.Name {
	case LoggerFile:
		if _, ok := l.Settings[SettingBaseDir]; !ok {
			l.Settings[SettingBaseDir] = baseDir
		}
	case LoggerRedis:
		if _, ok := l.Settings[SettingMaxBytes]; !ok {
			l.Settings[SettingMaxBytes] = defaultRedisLogMaxLen
		}
		if n, ok := asInt(l.Settings[SettingMaxBytes]); ok {
			l.Settings[SettingMaxBytes] = n
		}
	}
	if s := l.Sweeper; s != nil {
		if s.Settings == nil {
			s.Settings = map[string]any{}
		}
		if _, ok := s.Settings[SettingWorkDir]; !ok && l.Name == LoggerFile {
			if dir, ok := l.Settings[SettingBaseDir].(string); ok {
				s.Settings[SettingWorkDir] = dir
			}
		}
	}
}

// asInt reports v as an int if it is a whole number that fits one.
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		if int64(int(n)) == n {
			return int(n), true
		}
	case uint64:
		if n <= uint64(^uint(0)>>1) {
			return int(n), true
		}
	}
	return 0, false
}

// BaseDir returns a FILE logger's settings.base_dir ("" if unset or not a string).
func (l Logger) BaseDir() string {
	s, _ := l.Settings[SettingBaseDir].(string)
	return s
}

// MaxBytes returns a REDIS logger's settings.max_bytes (0 if unset or not a whole number).
func (l Logger) MaxBytes() int {
	n, _ := asInt(l.Settings[SettingMaxBytes])
	return n
}

// WorkDir returns the sweeper's settings.work_dir ("" if unset or not a string).
func (s Sweeper) WorkDir() string {
	d, _ := s.Settings[SettingWorkDir].(string)
	return d
}

// Addr is the API's listen address: "<bind_address>:<port>", or ":<port>"
// (every interface) when bind_address is empty.
func (c *Config) Addr() string { return listenAddr(c.BindAddress, c.Port) }

// listenAddr joins a bind address ("", "10.0.0.5", "::1", "[::1]",
// "localhost") and a port.
func listenAddr(bind string, port int) string {
	host := strings.TrimSuffix(strings.TrimPrefix(bind, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// RedactedRedisURL returns the Redis URL with any password replaced by
// "xxxxx", for logs and error messages. It never fails: a URL it cannot make
// sense of is redacted more rather than less.
func (c *Config) RedactedRedisURL() string { return redisx.Redact(c.WorkerPool.RedisPool.RedisURL) }

// Warnings lists what is allowed but deserves a loud line in the log at
// startup: what Load changed to accept Harbor's file (LoadWarnings), an
// empty secret, and Harbor settings that this version reads but does not
// use. (redisx announces the embedded backend.)
func (c *Config) Warnings() []string {
	w := append([]string(nil), c.LoadWarnings...)
	if c.Secret == "" {
		w = append(w, "CORE_SECRET is empty: every API call except GET /api/v1/stats will be refused with 401")
	}
	if c.Reaper.MaxDanglingHours != 0 {
		w = append(w, fmt.Sprintf("reaper.max_dangling_hours (%d) has no effect: it bounds the executions kept in Harbor core's "+
			"database, which Berth does not have; the jobs Berth runs are bounded by reaper.max_job_duration (%s)",
			c.Reaper.MaxDanglingHours, c.Reaper.MaxJobDuration))
	}
	return w
}
