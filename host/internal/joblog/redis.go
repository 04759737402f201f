package joblog

import (
	"github.com/berth-dev/berth/host/internal/job"

	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Defaults and bounds of the REDIS backend.
const (
	defaultRedisMaxBytes = 1 << 20
	minRedisMaxBytes     = 1 << 10
	defaultRedisTTL      = 7 * 24 * time.Hour // the longest TTL of a job's stats

	// redisWriteTimeout bounds one flush: waiting for the flush before it,
	// taking a connection and the round trip.
	redisWriteTimeout = 2 * time.Second
	// redisFlushDelay is the longest an entry waits in a logger's buffer
	// while Redis answers: an entry logged before a Get (on any host) is in
	// the Get's answer if it was logged at least this long before.
	redisFlushDelay = 50 * time.Millisecond
	// redisFlushBytes is the most a logger buffers before the Log call
	// that crosses it flushes at once (less for a small MaxBytes).
	redisFlushBytes = 64 << 10

	// redisWholeLog is a Get limit past which the whole log is read: no
	// log is that long, and -(limit+1) stays far from overflowing.
	redisWholeLog = 1 << 40
)

// RedisOptions configure the REDIS backend (NewRedis).
type RedisOptions struct {
	// Pool connects to Redis. Required.
	Pool *redis.Pool
	// Key returns the key of a job's log; the caller owns the spelling of
	// keys (package store), for example "{ns}:berth:log:<id>". It is only
	// called with valid job IDs. Required.
	Key func(jobID string) string
	// Level is the lowest level written.
	Level Level
	// MaxBytes bounds the stored log of one job (default 1 MiB, at least
	// 1 KiB). When a write makes a log longer, its oldest entries are
	// dropped until it holds about the newest 7/8 of MaxBytes, in whole
	// entries, after a first line "... N earlier bytes dropped ...".
	MaxBytes int
	// TTL is set on a log at every write (default 7 days, the longest TTL
	// of a job's stats), so that a log outlives its job's stats by little
	// and never stays forever.
	TTL time.Duration
	// Now is the clock of the entries; nil means time.Now.
	Now func() time.Time
}

// Redis is the REDIS backend: it keeps each job's log as one string in
// Redis, bounded in size and expiring, so that every host can serve the log
// of any job without a shared disk. It is also the Getter of those logs.
// There is no sweeper: the TTL removes old logs.
//
// Layout. A log is a plain string that writes APPEND to, the same bytes as
// a FILE log. The alternative, a list of entries with a byte counter,
// needs a second key next to the one the caller names, and a Get of the
// last N bytes must then walk the list; with a string, APPEND returns the
// length (the byte counter for free), Get is one GETRANGE of the tail, and
// a log costs one key with no per-entry overhead. The price is the trim: a
// string cannot lose its head in place, so a trim copies what it keeps
// (GETRANGE, then SET). To make that rare, a trim cuts the log down to 7/8
// of MaxBytes, so the next trim waits for another MaxBytes/8 of entries:
// at most 7 bytes copied per byte logged, in memory inside Redis, and none
// at all for the many logs that never reach MaxBytes.
//
// Writes. A logger buffers entries and sends them together, in order, in
// one round trip (a Lua script that appends, trims if needed and sets the
// TTL): after redisFlushDelay (50 ms), as soon as redisFlushBytes are
// waiting, and at Close. Each flush gives up after redisWriteTimeout
// (2 s), and its entries are then lost. Log waits for Redis only to flush
// (see redisLogger.Log), never longer than that timeout; while flushes
// fail, entries beyond MaxBytes of buffer are dropped at once instead.
// Close reports how many entries were lost, with the first error.
type Redis struct {
	pool     *redis.Pool
	key      func(jobID string) string
	level    Level
	maxBytes int
	keep     int // what a trim keeps, the marker line aside
	ttl      time.Duration
	now      func() time.Time

	// Tests shorten these.
	timeout    time.Duration
	flushDelay time.Duration
	flushBytes int
}

var (
	_ Backend = (*Redis)(nil)
	_ Getter  = (*Redis)(nil)
)

// NewRedis returns the REDIS backend. It does not touch Redis; a missing
// Pool or Key makes Open and Get fail.
func NewRedis(opts RedisOptions) *Redis {
	r := &Redis{
		pool:       opts.Pool,
		key:        opts.Key,
		level:      opts.Level,
		maxBytes:   opts.MaxBytes,
		ttl:        opts.TTL,
		now:        opts.Now,
		timeout:    redisWriteTimeout,
		flushDelay: redisFlushDelay,
	}
	if r.maxBytes <= 0 {
		r.maxBytes = defaultRedisMaxBytes
	}
	r.maxBytes = max(r.maxBytes, minRedisMaxBytes)
	// The marker line (under 64 bytes) fits in the eighth left over.
	r.keep = r.maxBytes - r.maxBytes/8
	r.flushBytes = min(redisFlushBytes, r.maxBytes/4)
	if r.ttl <= 0 {
		r.ttl = defaultRedisTTL
	}
	r.ttl = max(r.ttl, time.Millisecond)
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// Name returns REDIS.
func (r *Redis) Name() string { return NameRedis }

// keyOf returns the key of a valid job ID's log.
func (r *Redis) keyOf(jobID string) (string, error) {
	if r.pool == nil {
		return "", errors.New("joblog: redis backend: no Pool")
	}
	if r.key == nil {
		return "", errors.New("joblog: redis backend: no Key function")
	}
	key := r.key(jobID)
	if key == "" {
		return "", fmt.Errorf("joblog: redis backend: empty key for job %s", jobID)
	}
	return key, nil
}

// Open returns the logger of the job's log. It does not touch Redis: the
// key is written at the first flush, so a job that logs nothing costs
// nothing.
func (r *Redis) Open(jobID string) (Logger, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	key, err := r.keyOf(jobID)
	if err != nil {
		return nil, err
	}
	return &redisLogger{backend: r, id: jobID, key: key, sem: make(chan struct{}, 1)}, nil
}

// scriptAppend appends entries to a log, trims it and sets its TTL.
//
// The trim keeps the last ARGV[3] bytes, cut at the first entry start in
// them (a line that begins with an entry's time and level), else at the
// first line start, else anywhere; it then puts the marker line in front,
// adding up the bytes dropped by earlier trims, read from the old marker.
// Only a trim writes the marker, so a log starts with one only when
// trimmed: a job cannot forge it, since every entry starts with its time.
//
// KEYS: log
// ARGV: entries, max bytes, bytes to keep (at most max - 64, room for the
// marker), ttl in milliseconds
var scriptAppend = redis.NewScript(1, `
local n = redis.call('append', KEYS[1], ARGV[1])
local max = tonumber(ARGV[2])
if n > max then
  local keep = tonumber(ARGV[3])
  local dropped, skip = 0, 0
  local head = redis.call('getrange', KEYS[1], 0, 63)
  local d, after = string.match(head, '^%.%.%. (%d+) earlier bytes dropped %.%.%.\n()')
  if d then dropped, skip = tonumber(d), after - 1 end
  -- The kept bytes, with the byte before them to tell a line start.
  local w = redis.call('getrange', KEYS[1], n - keep - 1, -1)
  local at = string.find(w, '\n%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ %[')
  if at == nil then at = string.find(w, '\n', 1, true) end
  local kept
  if at == nil or at == #w then kept = string.sub(w, 2) else kept = string.sub(w, at + 1) end
  dropped = dropped + (n - skip) - #kept
  redis.call('set', KEYS[1], string.format('... %d earlier bytes dropped ...\n', dropped) .. kept)
end
redis.call('pexpire', KEYS[1], ARGV[4])
return n
`)

// write sends one chunk of entries in one round trip (two the first time
// the script meets a server that does not know it yet).
func (r *Redis) write(ctx context.Context, key string, chunk []byte) error {
	c, err := r.pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("joblog: redis append %s: %w", key, err)
	}
	defer c.Close()
	if _, err := scriptAppend.DoContext(ctx, c, key, chunk, r.maxBytes, r.keep, r.ttl.Milliseconds()); err != nil {
		return fmt.Errorf("joblog: redis append %s: %w", key, err)
	}
	return nil
}

// errBacklog is the error of entries dropped because the logger's buffer
// held MaxBytes while Redis failed or fell behind.
var errBacklog = errors.New("redis too slow: log buffer full")

type redisLogger struct {
	backend *Redis
	id      string
	key     string
	// sem holds a token while a flush runs: flushes run one at a time,
	// so chunks reach Redis in the order of their entries.
	sem chan struct{}

	mu      sync.Mutex
	buf     []byte      // entries not yet flushed
	n       int         // how many entries buf holds
	timer   *time.Timer // flushes after flushDelay; made at the first entry
	pending bool        // timer is armed
	failing bool        // the last flush failed
	closed  bool
	lost    int   // entries dropped or in failed flushes
	err     error // the first reason entries were lost
}

// Log buffers the entry. It blocks only to flush: when the entry fills the
// buffer to the flush size and no flush runs (then the job waits for Redis,
// which keeps a fast job from outrunning it), or when the buffer would
// exceed MaxBytes (then it waits for the running flush first). Both are
// bounded by the write timeout. While flushes fail, an entry that would
// exceed MaxBytes is dropped at once, so an outage costs the job at most
// one timeout, not one per entry.
func (l *redisLogger) Log(level Level, msg string) {
	r := l.backend
	if level < r.level {
		return
	}
	entry := appendEntry(nil, r.now(), level, msg)
	var ctx context.Context // one deadline for all the waiting of this call

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if l.overflows(entry) && !l.failing {
		l.mu.Unlock()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		l.flush(ctx, true)
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
	}
	if l.overflows(entry) {
		l.lose(1, errBacklog)
		l.mu.Unlock()
		return
	}
	l.buf = append(l.buf, entry...)
	l.n++
	full := len(l.buf) >= r.flushBytes
	if !l.pending {
		l.arm()
	}
	l.mu.Unlock()

	if full {
		if ctx == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.Background(), r.timeout)
			defer cancel()
		}
		// A running flush leaves the rest to the next Log or the timer.
		l.flush(ctx, false)
	}
}

// overflows tells whether appending entry would make the buffer hold more
// than MaxBytes. A single entry always fits an empty buffer: the trim in
// Redis keeps its end. l.mu must be held.
func (l *redisLogger) overflows(entry []byte) bool {
	return l.n > 0 && len(l.buf)+len(entry) > l.backend.maxBytes
}

// arm starts the flush timer. l.mu must be held.
func (l *redisLogger) arm() {
	l.pending = true
	if l.timer == nil {
		l.timer = time.AfterFunc(l.backend.flushDelay, l.onTimer)
		return
	}
	l.timer.Reset(l.backend.flushDelay)
}

// onTimer flushes the buffer, unless a flush runs already: then it tries
// again later rather than queue behind it, so that a hung Redis holds one
// timer goroutine at most.
func (l *redisLogger) onTimer() {
	l.mu.Lock()
	l.pending = false
	if l.closed || l.n == 0 {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.backend.timeout)
	defer cancel()
	if l.flush(ctx, false) {
		return
	}
	l.mu.Lock()
	if !l.closed && !l.pending && l.n > 0 {
		l.arm()
	}
	l.mu.Unlock()
}

// flush writes the whole buffer in one round trip, before ctx ends. If a
// flush runs already, it waits for it (wait) or leaves the buffer to it
// and the timer. It reports whether it ran.
func (l *redisLogger) flush(ctx context.Context, wait bool) bool {
	if wait {
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	} else {
		select {
		case l.sem <- struct{}{}:
		default:
			return false
		}
	}
	defer func() { <-l.sem }()

	l.mu.Lock()
	chunk, n := l.buf, l.n
	l.buf, l.n = nil, 0
	l.mu.Unlock()
	if n == 0 {
		return true
	}
	err := l.backend.write(ctx, l.key, chunk)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failing = err != nil
	if err != nil {
		l.lose(n, err)
	}
	return true
}

// Failed returns the first reason entries were lost, or nil.
func (l *redisLogger) Failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// lose counts n lost entries. l.mu must be held.
func (l *redisLogger) lose(n int, err error) {
	l.lost += n
	if l.err == nil {
		l.err = err
	}
}

// Close flushes what is buffered, after a running flush, all within the
// write timeout, and reports the entries lost, if any, with the first
// error.
func (l *redisLogger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), l.backend.timeout)
	defer cancel()
	l.flush(ctx, true)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 { // the flush before ours held on until the deadline
		l.lose(l.n, fmt.Errorf("joblog: redis append %s: waiting for an earlier flush: %w", l.key, context.DeadlineExceeded))
		l.buf, l.n = nil, 0
	}
	if l.err != nil {
		return fmt.Errorf("joblog: redis log of %s: %d entries lost: %w", l.id, l.lost, l.err)
	}
	return nil
}

// Get returns at most the last limit bytes of the job's log (all of it if
// limit <= 0), cut at a line start as File.Get does, in one round trip.
// What loggers still buffer is left out: it arrives within the flush delay
// (50 ms) while Redis answers.
func (r *Redis) Get(ctx context.Context, jobID string, limit int64) ([]byte, error) {
	if !job.ValidID(jobID) {
		return nil, badID(jobID)
	}
	key, err := r.keyOf(jobID)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := r.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("joblog: read log of %s: %w", jobID, err)
	}
	defer c.Close()
	whole := limit <= 0 || limit >= redisWholeLog
	var b []byte
	if whole {
		b, err = redis.Bytes(redis.DoContext(c, ctx, "GET", key))
	} else {
		// One byte more, before the window, to learn whether the window
		// starts a line. Negative offsets clamp to the start of the string.
		b, err = redis.Bytes(redis.DoContext(c, ctx, "GETRANGE", key, -(limit + 1), -1))
	}
	// Writes never leave an empty string, so an empty range is a missing
	// key: GETRANGE does not tell them apart.
	if errors.Is(err, redis.ErrNil) || (err == nil && len(b) == 0) {
		return nil, notFound(jobID)
	}
	if err != nil {
		return nil, fmt.Errorf("joblog: read log of %s: %w", jobID, err)
	}
	if whole || int64(len(b)) <= limit {
		return b, nil
	}
	return lineTail(b), nil
}
