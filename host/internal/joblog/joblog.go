package joblog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// Logger writes the log of one job. It is safe for concurrent use. Entries
// below the backend's level are dropped, and so are entries logged after
// Close.
type Logger interface {
	// Log writes one entry. msg is written as it is, newlines included;
	// trailing newlines are trimmed so that the entry ends with exactly one.
	// A Fatal entry is only written: it never ends the process.
	Log(level Level, msg string)
	// Close flushes and releases the logger. It reports the first write
	// error seen, if any. Calling it again does nothing and returns nil.
	Close() error
}

// Backend is one configured job log backend (a job_loggers entry).
type Backend interface {
	// Name is the backend's config name, such as STD_OUTPUT or FILE.
	Name() string
	// Open returns a Logger for the job. It fails with ErrBadID for an
	// invalid job ID.
	Open(jobID string) (Logger, error)
}

// Getter reads back the stored log of a job.
type Getter interface {
	// Get returns at most the last limit bytes of the job's log (all of it
	// if limit <= 0), starting at the start of a line when the tail holds
	// one. It fails with ErrBadID for an invalid ID and ErrNotFound when no
	// log is stored.
	Get(ctx context.Context, jobID string, limit int64) ([]byte, error)
}

// Sweeper deletes job logs older than its retention.
type Sweeper interface {
	// Sweep deletes the logs older than the retention and returns how many
	// it removed.
	Sweep(ctx context.Context) (int, error)
}

// Backend names, as written in the config.
const (
	NameStdOutput = "STD_OUTPUT"
	NameFile      = "FILE"
	NameRedis     = "REDIS"
)

// timeLayout is RFC 3339 to the second, always in UTC (hence the literal Z).
const timeLayout = "2006-01-02T15:04:05Z"

// appendEntry appends one entry, "<time> [<LEVEL>] <msg>\n", to buf.
func appendEntry(buf []byte, t time.Time, level Level, msg string) []byte {
	buf = t.UTC().AppendFormat(buf, timeLayout)
	buf = append(buf, " ["...)
	buf = append(buf, level.String()...)
	buf = append(buf, "] "...)
	buf = append(buf, strings.TrimRight(msg, "\n")...)
	return append(buf, '\n')
}

// nopLogger is the logger of a job when no backend is configured.
type nopLogger struct{}

func (nopLogger) Log(Level, string) {}
func (nopLogger) Close() error      { return nil }

// multiLogger sends each entry to several loggers, and nothing once closed.
type multiLogger struct {
	mu      sync.RWMutex // Log holds it shared, Close exclusively
	loggers []Logger     // nil once closed
}

func (m *multiLogger) Log(level Level, msg string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, l := range m.loggers {
		l.Log(level, msg)
	}
}

func (m *multiLogger) Close() error {
	m.mu.Lock()
	loggers := m.loggers
	m.loggers = nil
	m.mu.Unlock()
	errs := make([]error, 0, len(loggers))
	for _, l := range loggers {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
