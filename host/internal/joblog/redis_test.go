package joblog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth-dev/berth/host/internal/testkit/redistest"
)

type redisBundle struct {
	srv *redistest.Server
	key func(jobID string) string // "{<namespace>}:berth:log:<id>"
}

// setupRedis gives the test a namespace of its own on the shared server.
func setupRedis(t *testing.T) redisBundle {
	t.Helper()
	srv := redistest.Shared(t)
	ns := srv.Namespace(t)
	return redisBundle{srv: srv, key: func(id string) string { return "{" + ns + "}:berth:log:" + id }}
}

// backend returns a REDIS backend with a pool of its own, as each host
// has, unless opts brings one. Key is the bundle's, Now defaults to t0.
func (b redisBundle) backend(t *testing.T, opts RedisOptions) *Redis {
	t.Helper()
	if opts.Pool == nil {
		opts.Pool = b.srv.Pool(t)
	}
	opts.Key = b.key
	if opts.Now == nil {
		opts.Now = fixedClock(t0)
	}
	return NewRedis(opts)
}

// do runs one command on a connection of its own.
func (b redisBundle) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := redis.DialContext(ctx, "tcp", b.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := redis.DoContext(c, ctx, cmd, args...)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return v
}

// stored returns the raw value of the job's log key.
func (b redisBundle) stored(t *testing.T, jobID string) string {
	t.Helper()
	s, err := redis.String(b.do(t, "GET", b.key(jobID)), nil)
	if err != nil {
		t.Fatalf("GET log of %s: %v", jobID, err)
	}
	return s
}

// waitLog polls Get until it returns want.
func waitLog(t *testing.T, g Getter, jobID, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := g.Get(context.Background(), jobID, 0)
		if err == nil && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get = %q, %v; want %q", got, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func entryAt(level Level, msg string) string {
	return string(appendEntry(nil, t0, level, msg))
}

func TestNewRedis(t *testing.T) {
	t.Parallel()
	p := &redis.Pool{}
	key := func(id string) string { return "log:" + id }
	tests := []struct {
		name                       string
		opts                       RedisOptions
		maxBytes, keep, flushBytes int
		ttl                        time.Duration
	}{
		{"Defaults", RedisOptions{}, 1 << 20, 1<<20 - 1<<17, 64 << 10, 7 * 24 * time.Hour},
		{"Negative", RedisOptions{MaxBytes: -1, TTL: -time.Second}, 1 << 20, 1<<20 - 1<<17, 64 << 10, 7 * 24 * time.Hour},
		{"Small", RedisOptions{MaxBytes: 100, TTL: time.Microsecond}, 1024, 896, 256, time.Millisecond},
		{"Set", RedisOptions{MaxBytes: 8000, TTL: time.Hour}, 8000, 7000, 2000, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Pool, tt.opts.Key = p, key
			r := NewRedis(tt.opts)
			if r.maxBytes != tt.maxBytes || r.keep != tt.keep || r.flushBytes != tt.flushBytes || r.ttl != tt.ttl {
				t.Fatalf("maxBytes %d, keep %d, flushBytes %d, ttl %v; want %d, %d, %d, %v",
					r.maxBytes, r.keep, r.flushBytes, r.ttl, tt.maxBytes, tt.keep, tt.flushBytes, tt.ttl)
			}
			if r.keep+64 > r.maxBytes {
				t.Fatalf("no room for the marker: keep %d of %d", r.keep, r.maxBytes)
			}
			if r.Name() != "REDIS" || r.now == nil || r.timeout != 2*time.Second || r.flushDelay != 50*time.Millisecond {
				t.Fatalf("Name %q, now %v, timeout %v, flushDelay %v", r.Name(), r.now != nil, r.timeout, r.flushDelay)
			}
		})
	}

	t.Run("Incomplete", func(t *testing.T) {
		t.Parallel()
		for _, opts := range []RedisOptions{
			{Key: key},
			{Pool: p},
			{Pool: p, Key: func(string) string { return "" }},
		} {
			r := NewRedis(opts)
			if l, err := r.Open(id1); err == nil || l != nil {
				t.Errorf("Open with %+v = %v, %v; want an error", opts, l, err)
			}
			if _, err := r.Get(context.Background(), id1, 0); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Get with %+v = %v; want an error other than ErrNotFound", opts, err)
			}
		}
	})
}

// TestRedisOtherHostReads: what one host writes, a host with a pool of its
// own reads; a second logger of the job (a retry) appends.
func TestRedisOtherHostReads(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	ctx := context.Background()
	hostA := b.backend(t, RedisOptions{})
	hostB := b.backend(t, RedisOptions{})

	l := mustOpen(t, hostA, id3)
	l.Log(Info, "one\ntwo\n\n")
	l.Log(Error, "three")
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := entryAt(Info, "one\ntwo") + entryAt(Error, "three")
	if got, err := hostB.Get(ctx, id3, 0); err != nil || string(got) != want {
		t.Fatalf("host B Get = %q, %v; want %q", got, err, want)
	}

	l = mustOpen(t, hostB, id3)
	l.Log(Warning, "four")
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want += entryAt(Warning, "four")
	if got, err := hostA.Get(ctx, id3, 0); err != nil || string(got) != want {
		t.Fatalf("host A Get = %q, %v; want %q", got, err, want)
	}
	// The key is a plain string holding the same bytes as a FILE log.
	if got := b.stored(t, id3); got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	if got, err := hostA.Get(ctx, id1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of another job = %q, %v; want ErrNotFound", got, err)
	}
}

// TestRedisGetLimitAgreesWithFile: for every limit, REDIS's Get cuts the
// tail where FILE's does.
func TestRedisGetLimitAgreesWithFile(t *testing.T) {
	t.Parallel()
	contents := []string{
		"aaaa\nbbbbbbbb\ncc\n",
		"no newline at all",
		"x\n",
		"\n\n\nab\n",
		"ab\ncd",
		"... 12 earlier bytes dropped ...\n" + entryAt(Info, "a\nb") + entryAt(Error, "c"),
	}
	b := setupRedis(t)
	fb := setupFile(t)
	r := b.backend(t, RedisOptions{})
	ctx := context.Background()
	for i, content := range contents {
		id := fmt.Sprintf("%024x", i)
		fb.write(t, id+".log", content)
		b.do(t, "SET", b.key(id), content)
		for limit := int64(-1); limit <= int64(len(content))+2; limit++ {
			want, err := fb.file.Get(ctx, id, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Get(ctx, id, limit)
			if err != nil || string(got) != string(want) {
				t.Errorf("content %q, limit %d: Get = %q, %v; want %q", content, limit, got, err, want)
			}
		}
		if got, err := r.Get(ctx, id, 1<<62); err != nil || string(got) != content {
			t.Errorf("content %q, huge limit: Get = %q, %v", content, got, err)
		}
	}

	t.Run("WrongType", func(t *testing.T) {
		b.do(t, "RPUSH", b.key(id2), "x")
		for _, limit := range []int64{0, 5} {
			if got, err := r.Get(ctx, id2, limit); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("limit %d: Get of a list = %q, %v; want an error other than ErrNotFound", limit, got, err)
			}
		}
	})
}

// TestRedisReadWhileOpen: entries become visible after the flush delay
// while the logger stays open.
func TestRedisReadWhileOpen(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	writer := b.backend(t, RedisOptions{})
	reader := b.backend(t, RedisOptions{})
	l := mustOpen(t, writer, id1)

	if got, err := reader.Get(context.Background(), id1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before any entry = %q, %v; want ErrNotFound", got, err)
	}
	l.Log(Info, "first")
	waitLog(t, reader, id1, entryAt(Info, "first"))
	l.Log(Info, "second")
	waitLog(t, reader, id1, entryAt(Info, "first")+entryAt(Info, "second"))
}

// TestRedisFlushOnSize: with the timer out of the way, the entry that
// fills the buffer flushes it before Log returns; what follows waits.
func TestRedisFlushOnSize(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	r := b.backend(t, RedisOptions{MaxBytes: 4096}) // flushes at 1 KiB
	r.flushDelay = time.Hour
	l := mustOpen(t, r, id1)
	ctx := context.Background()

	var want strings.Builder
	for i := 0; want.Len() < r.flushBytes; i++ {
		msg := fmt.Sprintf("entry %d %s", i, strings.Repeat("x", 100))
		l.Log(Info, msg)
		want.WriteString(entryAt(Info, msg))
		if got, err := r.Get(ctx, id1, 0); want.Len() < r.flushBytes && !errors.Is(err, ErrNotFound) {
			t.Fatalf("flushed early, at %d bytes: %q, %v", want.Len(), got, err)
		}
	}
	if got, err := r.Get(ctx, id1, 0); err != nil || string(got) != want.String() {
		t.Fatalf("Get = %q, %v; want %q", got, err, want.String())
	}
	l.Log(Info, "buffered")
	if got, err := r.Get(ctx, id1, 0); err != nil || string(got) != want.String() {
		t.Fatalf("Get = %q, %v; want %q", got, err, want.String())
	}
}

// TestRedisCloseFlushes: Close sends what is buffered; a second Close and
// a Log after Close do nothing.
func TestRedisCloseFlushes(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	r := b.backend(t, RedisOptions{})
	r.flushDelay = time.Hour // only Close flushes
	ctx := context.Background()
	l, err := r.Open(id1)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Info, "one")
	l.Log(Info, "two")
	if got, err := r.Get(ctx, id1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Close = %q, %v; want ErrNotFound", got, err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := entryAt(Info, "one") + entryAt(Info, "two")
	if got, err := r.Get(ctx, id1, 0); err != nil || string(got) != want {
		t.Fatalf("Get after Close = %q, %v; want %q", got, err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l.Log(Info, "after")
	rl := l.(*redisLogger)
	rl.mu.Lock()
	n := rl.n
	rl.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries buffered after Close", n)
	}
	if got := b.stored(t, id1); got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

func TestRedisLevels(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	for _, min := range []Level{Debug, Info, Warning, Error, Fatal} {
		t.Run(min.String(), func(t *testing.T) {
			t.Parallel()
			r := b.backend(t, RedisOptions{Level: min})
			id := fmt.Sprintf("%024x", int(min))
			l := mustOpen(t, r, id)
			var want strings.Builder
			for lv := Debug; lv <= Fatal; lv++ {
				l.Log(lv, "at "+lv.String())
				if lv >= min {
					want.WriteString(entryAt(lv, "at "+lv.String()))
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := b.stored(t, id); got != want.String() {
				t.Fatalf("log:\n%s\nwant:\n%s", got, want.String())
			}
		})
	}
	t.Run("NothingAtLevel", func(t *testing.T) {
		t.Parallel()
		r := b.backend(t, RedisOptions{Level: Error})
		l := mustOpen(t, r, id2)
		l.Log(Warning, "dropped")
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if n, _ := redis.Int(b.do(t, "EXISTS", b.key(id2)), nil); n != 0 {
			t.Fatal("a logger with no entry at its level wrote the key")
		}
	})
}

// TestRedisTTL: every flush sets the TTL again.
func TestRedisTTL(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	pttl := func(id string) time.Duration {
		ms, err := redis.Int64(b.do(t, "PTTL", b.key(id)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(ms) * time.Millisecond
	}
	write := func(r *Redis, id, msg string) {
		l := mustOpen(t, r, id)
		l.Log(Info, msg)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}

	r := b.backend(t, RedisOptions{TTL: time.Hour})
	write(r, id1, "one")
	if d := pttl(id1); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("TTL %v, want about 1h", d)
	}
	b.do(t, "PEXPIRE", b.key(id1), 10_000)
	write(r, id1, "two")
	if d := pttl(id1); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("TTL %v after a write, want about 1h again", d)
	}
	// A trim rewrites the key: the TTL stays.
	small := b.backend(t, RedisOptions{TTL: time.Hour, MaxBytes: 1024})
	write(small, id1, strings.Repeat("y", 2000))
	if d := pttl(id1); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("TTL %v after a trim, want about 1h", d)
	}

	write(b.backend(t, RedisOptions{}), id2, "default")
	if d, week := pttl(id2), 7*24*time.Hour; d <= week-time.Minute || d > week {
		t.Fatalf("default TTL %v, want about %v", d, week)
	}

	t.Run("Expires", func(t *testing.T) {
		r := b.backend(t, RedisOptions{TTL: 50 * time.Millisecond})
		write(r, id3, "short-lived")
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := r.Get(context.Background(), id3, 0)
			if errors.Is(err, ErrNotFound) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("log still there: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

var markerLine = regexp.MustCompile(`^\.\.\. (\d+) earlier bytes dropped \.\.\.\n`)

// checkTrimmed checks a trimmed log against all that was written, entry
// by entry (ends holds the offset in all after each entry): the marker
// comes first and counts what is missing; the rest is the newest entries,
// whole, and fills at least what a trim keeps, less one entry. It returns
// the part after the marker.
func checkTrimmed(t *testing.T, r *Redis, log, all string, ends []int) string {
	t.Helper()
	if len(log) > r.maxBytes {
		t.Fatalf("log holds %d bytes, more than MaxBytes %d", len(log), r.maxBytes)
	}
	m := markerLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no marker line: %.80q", log)
	}
	body := log[len(m[0]):]
	dropped, _ := strconv.Atoi(m[1])
	if dropped+len(body) != len(all) {
		t.Fatalf("marker says %d bytes dropped, %d kept, of %d written", dropped, len(body), len(all))
	}
	if !strings.HasSuffix(all, body) {
		t.Fatalf("kept bytes are not the newest: %.80q...", body)
	}
	cut := len(all) - len(body)
	whole, biggest := cut == 0, 0
	for i, end := range ends {
		whole = whole || end == cut
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		biggest = max(biggest, end-start)
	}
	if !whole {
		t.Fatalf("cut at %d, inside an entry", cut)
	}
	if len(body) < r.keep-biggest {
		t.Fatalf("kept %d bytes, want at least %d", len(body), r.keep-biggest)
	}
	return body
}

func TestRedisTrim(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	tests := []struct {
		name    string
		entries int
		msg     func(i int) string
	}{
		{"OneLineEntries", 400, func(i int) string { return fmt.Sprintf("entry %d %s", i, strings.Repeat("x", i%50)) }},
		// Continuation lines never start the kept part.
		{"MultiLineEntries", 300, func(i int) string {
			return fmt.Sprintf("entry %d\n  at line %d\n... 1 earlier bytes dropped ...\n%s", i, i, strings.Repeat("z", i%70))
		}},
		{"FewLargeEntries", 10, func(i int) string { return fmt.Sprintf("entry %d %s", i, strings.Repeat("w", 700)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := b.backend(t, RedisOptions{MaxBytes: 2048})
			id := job24(tt.name)
			l := mustOpen(t, r, id)
			var all strings.Builder
			var ends []int
			for i := range tt.entries {
				msg := tt.msg(i)
				l.Log(Info, msg)
				all.WriteString(entryAt(Info, msg))
				ends = append(ends, all.Len())
			}
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			log := b.stored(t, id)
			body := checkTrimmed(t, r, log, all.String(), ends)
			last := entryAt(Info, tt.msg(tt.entries-1))
			if !strings.HasSuffix(body, last) {
				t.Fatalf("newest entry missing: ...%q", body[max(0, len(body)-80):])
			}
			got, err := r.Get(context.Background(), id, 0)
			if err != nil || string(got) != log {
				t.Fatalf("Get = %.80q, %v", got, err)
			}
		})
	}

	// One entry larger than MaxBytes: its last lines are kept, cut at a
	// line start.
	t.Run("EntryLargerThanMax", func(t *testing.T) {
		t.Parallel()
		r := b.backend(t, RedisOptions{MaxBytes: 1024})
		var msg strings.Builder
		for i := range 300 {
			fmt.Fprintf(&msg, "line %04d\n", i)
		}
		l := mustOpen(t, r, id2)
		l.Log(Error, "small")
		l.Log(Error, msg.String())
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		all := entryAt(Error, "small") + entryAt(Error, msg.String())
		log := b.stored(t, id2)
		if len(log) > r.maxBytes {
			t.Fatalf("log holds %d bytes", len(log))
		}
		m := markerLine.FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("no marker line: %.80q", log)
		}
		body := log[len(m[0]):]
		dropped, _ := strconv.Atoi(m[1])
		if dropped+len(body) != len(all) || !strings.HasSuffix(all, body) || !strings.HasPrefix(body, "line ") ||
			!strings.HasSuffix(body, "line 0299\n") || len(body) < r.keep-10 {
			t.Fatalf("dropped %d, kept %d of %d: %.80q", dropped, len(body), len(all), log)
		}
	})
}

// job24 makes a job ID out of a name: its first 12 bytes in hex, padded.
func job24(name string) string {
	return (fmt.Sprintf("%x", name) + strings.Repeat("0", 24))[:24]
}

// TestRedisConcurrentWriters: entries of many goroutines arrive whole,
// exactly once, whether they share a logger or each has one.
func TestRedisConcurrentWriters(t *testing.T) {
	t.Parallel()
	b := setupRedis(t)
	for _, shared := range []bool{true, false} {
		name := "LoggerPerGoroutine"
		if shared {
			name = "SharedLogger"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const goroutines, entries = 20, 100
			r := b.backend(t, RedisOptions{MaxBytes: 64 << 20})
			id := job24(name)
			one, err := r.Open(id)
			if err != nil {
				t.Fatal(err)
			}
			loggers := []Logger{one}
			var wg sync.WaitGroup
			for g := range goroutines {
				l := one
				if !shared && g > 0 {
					if l, err = r.Open(id); err != nil {
						t.Fatal(err)
					}
					loggers = append(loggers, l)
				}
				wg.Go(func() {
					for i := range entries {
						l.Log(Warning, fmt.Sprintf("g%d i%d %s", g, i, strings.Repeat("x", payload(g, i))))
					}
				})
			}
			wg.Wait()
			for _, l := range loggers {
				if err := l.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}

			// Each goroutine's entries keep their order.
			checkConcurrentLog(t, b.stored(t, id), goroutines, entries, true)
		})
	}
}

// TestRedisBadIDs: invalid IDs are refused before any connection to Redis
// is made.
func TestRedisBadIDs(t *testing.T) {
	t.Parallel()
	var dials atomic.Int64
	errDial := errors.New("no dial expected")
	pool := &redis.Pool{DialContext: func(context.Context) (redis.Conn, error) {
		dials.Add(1)
		return nil, errDial
	}}
	t.Cleanup(func() { _ = pool.Close() })
	r := NewRedis(RedisOptions{Pool: pool, Key: func(id string) string { return "log:" + id }})
	m := NewManager([]Backend{r}, r, nil, time.Hour, nil)
	ctx := context.Background()
	for _, id := range []string{"../../etc/passwd", "..", ".", "a/b", strings.ToUpper("abcdefabcdefabcdefabcdef"),
		"", id1 + "/../../victim", id1 + "@1/../../victim", id1 + "\x00", id1 + "\r\n*1", "*"} {
		l, err := r.Open(id)
		if !errors.Is(err, ErrBadID) || l != nil {
			t.Errorf("Open(%q) = %v, %v; want ErrBadID", id, l, err)
		}
		if got, err := r.Get(ctx, id, 0); !errors.Is(err, ErrBadID) || got != nil {
			t.Errorf("Get(%q) = %q, %v; want ErrBadID", id, got, err)
		}
		if got, err := m.Get(ctx, id, 10); !errors.Is(err, ErrBadID) || got != nil {
			t.Errorf("Manager.Get(%q) = %q, %v; want ErrBadID", id, got, err)
		}
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d dials for invalid IDs", n)
	}
	// The pool counts: a valid ID does dial.
	if _, err := r.Get(ctx, id1, 0); !errors.Is(err, errDial) || dials.Load() != 1 {
		t.Fatalf("Get of a valid ID = %v after %d dials; want the dial error", err, dials.Load())
	}
}

// TestRedisDown: with the server gone, Log returns within the write
// timeout and Close reports the lost entries.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := redisBundle{srv: srv, key: func(id string) string { return "berth:log:" + id }}
	r := b.backend(t, RedisOptions{})
	l, err := r.Open(id1)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Info, "before")
	waitLog(t, r, id1, entryAt(Info, "before"))

	srv.Kill()
	start := time.Now()
	l.Log(Info, strings.Repeat("x", r.flushBytes)) // flushes at once
	if d := time.Since(start); d > r.timeout+time.Second {
		t.Fatalf("Log blocked %v with Redis down", d)
	}
	l.Log(Info, "buffered")
	start = time.Now()
	err = l.Close()
	if d := time.Since(start); d > r.timeout+time.Second {
		t.Fatalf("Close blocked %v with Redis down", d)
	}
	if err == nil || !strings.Contains(err.Error(), "entries lost") {
		t.Fatalf("Close = %v, want an error about lost entries", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

// hungServer accepts connections and never answers, as a Redis that hangs.
// It returns its address and how many connections it accepted.
func hungServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		accepted atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		conns    []net.Conn
		closed   bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &accepted
}

// isTimeout tells whether err is the end of the context or of the read
// deadline redigo derives from it, whichever came first.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

func hungPool(t *testing.T, addr string) *redis.Pool {
	t.Helper()
	p := &redis.Pool{DialContext: func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", addr)
	}}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestRedisHung: a server that never answers holds neither Log nor Close
// past the write timeout; entries beyond MaxBytes waiting behind a stuck
// flush are dropped at once.
func TestRedisHung(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	const slack = 700 * time.Millisecond

	t.Run("LogAndClose", func(t *testing.T) {
		t.Parallel()
		addr, _ := hungServer(t)
		r := NewRedis(RedisOptions{Pool: hungPool(t, addr), Key: func(id string) string { return "log:" + id }})
		r.timeout = timeout
		r.flushDelay = time.Hour
		l, err := r.Open(id1)
		if err != nil {
			t.Fatal(err)
		}
		// Two goroutines fill the buffer at once: one flushes and waits for
		// the answer, the other waits for that flush; both give up in time.
		var wg sync.WaitGroup
		times := make([]time.Duration, 2)
		for i := range times {
			wg.Go(func() {
				start := time.Now()
				l.Log(Info, strings.Repeat("x", r.flushBytes))
				times[i] = time.Since(start)
			})
		}
		wg.Wait()
		for i, d := range times {
			if d > timeout+slack {
				t.Errorf("Log %d blocked %v, timeout %v", i, d, timeout)
			}
		}
		if max(times[0], times[1]) < timeout*3/4 {
			t.Errorf("Log took %v: no flush waited for the hung server", times)
		}
		start := time.Now()
		err = l.Close()
		if d := time.Since(start); d > timeout+slack {
			t.Errorf("Close blocked %v, timeout %v", d, timeout)
		}
		if !isTimeout(err) || !strings.Contains(err.Error(), "entries lost") {
			t.Fatalf("Close = %v, want lost entries and a timeout", err)
		}
	})

	t.Run("Backlog", func(t *testing.T) {
		t.Parallel()
		addr, accepted := hungServer(t)
		r := NewRedis(RedisOptions{Pool: hungPool(t, addr), Key: func(id string) string { return "log:" + id }, MaxBytes: 1024})
		r.timeout = timeout
		r.flushDelay = time.Millisecond
		r.flushBytes = 1 << 30 // only the timer flushes
		l, err := r.Open(id1)
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Info, "first")
		deadline := time.Now().Add(5 * time.Second)
		for accepted.Load() == 0 { // the timer's flush waits for an answer
			if time.Now().After(deadline) {
				t.Fatal("no flush reached the server")
			}
			time.Sleep(time.Millisecond)
		}
		// The first Log that finds the buffer full waits for the stuck
		// flush, in vain; the others drop their entries at once. (Half a
		// timeout later, so that this wait and the stuck flush do not end
		// at the same time.)
		time.Sleep(timeout / 2)
		var long []time.Duration
		for i := range 30 {
			start := time.Now()
			l.Log(Info, fmt.Sprintf("%d %s", i, strings.Repeat("y", 100)))
			if d := time.Since(start); d > timeout/2 {
				long = append(long, d)
			}
		}
		if len(long) > 1 || (len(long) == 1 && long[0] > timeout+slack) {
			t.Errorf("Log calls blocked %v behind a stuck flush, timeout %v", long, timeout)
		}
		rl := l.(*redisLogger)
		rl.mu.Lock()
		size, lost := len(rl.buf), rl.lost
		rl.mu.Unlock()
		if size > r.maxBytes || lost < 10 {
			t.Errorf("buffer %d bytes (MaxBytes %d), %d entries lost", size, r.maxBytes, lost)
		}
		// All 31 entries are lost; Close counts them all unless it gave up
		// waiting for a timer's flush that still held some (at most what
		// MaxBytes holds, 9).
		err = l.Close()
		counted := -1
		if m := regexp.MustCompile(` (\d+) entries lost`).FindStringSubmatch(fmt.Sprint(err)); m != nil {
			counted, _ = strconv.Atoi(m[1])
		}
		if !(isTimeout(err) || errors.Is(err, errBacklog)) || counted < 31-9 || counted > 31 {
			t.Fatalf("Close = %v, want about 31 entries lost and a timeout", err)
		}
	})
}

// TestManagerFileAndRedis: the Manager writes each entry to FILE and REDIS
// and reads through REDIS, from this host and from another.
func TestManagerFileAndRedis(t *testing.T) {
	t.Parallel()
	fb := setupFileLevel(t, Debug, fixedClock(t0))
	b := setupRedis(t)
	r := b.backend(t, RedisOptions{Level: Info})
	m := NewManager([]Backend{fb.file, r}, r, []Sweeper{fb.file.Sweeper(time.Hour)}, time.Hour, nil)
	other := b.backend(t, RedisOptions{})
	ctx := context.Background()

	l, err := m.Open(id3)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Debug, "debug")
	l.Log(Info, "info")
	want := entryAt(Info, "info")
	waitLog(t, m, id3, want) // while the logger is open
	l.Log(Error, "error\ndetail")
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want += entryAt(Error, "error\ndetail")
	if got, err := m.Get(ctx, id3, 0); err != nil || string(got) != want {
		t.Fatalf("Manager.Get = %q, %v; want %q", got, err, want)
	}
	if got, err := other.Get(ctx, id3, int64(len(want))-1); err != nil || string(got) != entryAt(Error, "error\ndetail") {
		t.Fatalf("other host Get = %q, %v", got, err)
	}
	if got := fb.read(t, id3); got != entryAt(Debug, "debug")+want {
		t.Fatalf("file log = %q", got)
	}
	if got, err := m.Get(ctx, id1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Manager.Get of an unknown job = %q, %v; want ErrNotFound", got, err)
	}
}
