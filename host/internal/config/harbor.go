package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/host/internal/redisx"
)

// LoggerDB is Harbor's job logger that keeps job logs in Harbor's database.
// Berth has no database: Load runs it as REDIS, which serves the same
// purpose (logs that any host can read), and says so in LoadWarnings.
const LoggerDB = "DB"

const (
	// harborMinUpdateHours is the least reaper.max_update_hours Harbor uses:
	// it raises smaller values to it.
	harborMinUpdateHours = 24
	// maxHours bounds reaper.max_update_hours and max_dangling_hours (114
	// years), so that they fit a time.Duration.
	maxHours = 1_000_000
)

// harborFile maps what Harbor's own config file (the one its installer
// writes) holds onto Berth's settings, collecting a warning for each thing
// it changed or left unused. doc is the file's root node (nil without a
// file); it tells which keys the file gave.
type harborFile struct {
	doc      *yaml.Node
	warnings []string
}

func (h *harborFile) warn(format string, args ...any) {
	h.warnings = append(h.warnings, fmt.Sprintf(format, args...))
}

// jobLoggers runs Harbor's DB job logger as REDIS. Its sweeper (days to keep
// logs in the database) does not apply: REDIS logs expire with the job's
// stats.
func (h *harborFile) jobLoggers(c *Config) {
	for i := range c.JobLoggers {
		l := &c.JobLoggers[i]
		if !strings.EqualFold(strings.TrimSpace(l.Name), LoggerDB) {
			continue
		}
		l.Name = LoggerRedis
		msg := fmt.Sprintf("job_loggers[%d]: Harbor's DB job logger (job logs in Harbor's database) runs as the REDIS logger: "+
			"job logs are kept in Redis, where every host can read them, and expire with the job's stats", i)
		if l.Sweeper != nil {
			msg += fmt.Sprintf("; its sweeper (%s) does not apply", days(l.Sweeper.Duration))
			l.Sweeper = nil
		}
		h.warn("%s", msg)
	}
}

// reaper sets reaper.max_job_duration from Harbor's reaper.max_update_hours,
// unless env MAX_JOB_DURATION_SECONDS (applied, which wins as env does)
// sets it. The file giving both keys with different values is an error.
func (h *harborFile) reaper(c *Config, fromEnv []envVar) error {
	hours := c.Reaper.MaxUpdateHours
	if hours <= 0 || hours > maxHours {
		return nil // 0: not given (Harbor: 24); out of range: Validate says so
	}
	d := Duration(time.Duration(hours) * time.Hour)
	if ev, ok := appliedEnv(fromEnv, keyMaxJobDuration); ok {
		if c.Reaper.MaxJobDuration != d {
			h.warn("env %s (%s) wins over reaper.max_update_hours (%d): Berth has one bound for both, reaper.max_job_duration, now %s",
				ev.name, c.Reaper.MaxJobDuration, hours, c.Reaper.MaxJobDuration)
		}
		return nil
	}
	if hasKey(h.doc, "reaper", "max_job_duration") && c.Reaper.MaxJobDuration != d {
		return &fieldError{key: "reaper.max_update_hours", msg: fmt.Sprintf(
			"is %d (%s) but reaper.max_job_duration is %s; they are one setting (Harbor's name and Berth's): keep one",
			hours, d, c.Reaper.MaxJobDuration)}
	}
	c.Reaper.MaxJobDuration = d
	if hours < harborMinUpdateHours {
		h.warn("reaper.max_update_hours is %d: a running job that shows no progress for %s is marked Error, "+
			"where Harbor would wait %dh (it raises smaller values to that)", hours, d, harborMinUpdateHours)
	}
	return nil
}

// idleTimeout applies the Redis URL's idle_timeout_seconds, which wins over
// idle_timeout_second as in Harbor (its installer writes both, 30 in the URL
// and 3600 in the file), so that the config, GET /api/v1/config and the pool
// agree. It warns when the file or env gave another idle_timeout_second.
func (h *harborFile) idleTimeout(c *Config, fromEnv []envVar) {
	rp := &c.WorkerPool.RedisPool
	if rp.RedisURL == "" {
		return
	}
	t, err := redisx.ParseURL(rp.RedisURL)
	if err != nil || t.IdleTimeout == nil {
		return // Validate reports a bad URL
	}
	secs := int(*t.IdleTimeout / time.Second)
	if secs == rp.IdleTimeoutSecond {
		return
	}
	given := keyIdleTimeout
	ev, fromEnvVar := appliedEnv(fromEnv, keyIdleTimeout)
	if fromEnvVar {
		given += " (from env " + ev.name + ")"
	}
	if fromEnvVar || hasKey(h.doc, "worker_pool", "redis_pool", "idle_timeout_second") {
		closed := fmt.Sprintf("closed after %s", time.Duration(secs)*time.Second)
		if secs == 0 {
			closed = "never closed"
		}
		h.warn("%s is %d but worker_pool.redis_pool.redis_url says idle_timeout_seconds=%d; the URL wins, as in Harbor: "+
			"idle Redis connections are %s", given, rp.IdleTimeoutSecond, secs, closed)
	}
	rp.IdleTimeoutSecond = secs
}

// appliedEnv returns the env variable among applied that set key.
func appliedEnv(applied []envVar, key string) (envVar, bool) {
	for _, ev := range applied {
		if ev.key == key {
			return ev, true
		}
	}
	return envVar{}, false
}

// hasKey reports whether the mapping n holds the key path. (A mapping
// given as an alias, *anchor, cannot hold one of these keys: no other key
// of the file has the same type to carry the anchor.)
func hasKey(n *yaml.Node, path ...string) bool {
	for _, k := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
