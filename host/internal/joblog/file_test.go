package joblog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewFile(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	base := filepath.Join(parent, "a", "b")
	f, err := NewFile(base, Info, nil)
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	if f.Name() != "FILE" {
		t.Fatalf("Name() = %q", f.Name())
	}
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		t.Fatalf("base dir not created: %v", err)
	}
	l := mustOpen(t, f, id1)
	l.Log(Info, "hello")
	fi, err := os.Stat(filepath.Join(base, id1+".log"))
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&^0o644 != 0 || perm&0o600 != 0o600 {
		t.Fatalf("log file mode %v, want 0644 (less the umask)", perm)
	}

	if _, err := NewFile("", Info, nil); err == nil {
		t.Fatal("NewFile with empty dir: want an error")
	}
	notDir := filepath.Join(parent, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFile(notDir, Info, nil); err == nil {
		t.Fatal("NewFile on a regular file: want an error")
	}
}

func TestFileLevels(t *testing.T) {
	t.Parallel()
	for _, min := range []Level{Debug, Info, Warning, Error, Fatal} {
		t.Run(min.String(), func(t *testing.T) {
			t.Parallel()
			b := setupFileLevel(t, min, fixedClock(t0))
			l := mustOpen(t, b.file, id1)
			var want strings.Builder
			for lv := Debug; lv <= Fatal; lv++ {
				l.Log(lv, "at "+lv.String())
				if lv >= min {
					fmt.Fprintf(&want, "2026-11-21T14:03:05Z [%s] at %s\n", lv, lv)
				}
			}
			if got := b.read(t, id1); got != want.String() {
				t.Fatalf("log:\n%s\nwant:\n%s", got, want.String())
			}
		})
	}
}

func TestFileFormatAndAppend(t *testing.T) {
	t.Parallel()
	b := setupFileLevel(t, Debug, fixedClock(t0.In(time.FixedZone("X", -5*3600))))
	l := mustOpen(t, b.file, id3)
	l.Log(Info, "one\ntwo\n\n")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A second logger of the same job (a retry) appends.
	l = mustOpen(t, b.file, id3)
	l.Log(Error, "three")
	want := "2026-11-21T14:03:05Z [INFO] one\ntwo\n" +
		"2026-11-21T14:03:05Z [ERROR] three\n"
	if got := b.read(t, id3); got != want {
		t.Fatalf("log = %q, want %q", got, want)
	}
}

func TestFileCloseTwiceAndLogAfterClose(t *testing.T) {
	t.Parallel()
	b := setupFile(t)
	l, err := b.file.Open(id1)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Info, "before")
	if err := l.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l.Log(Info, "after") // must neither panic nor write
	if got := b.read(t, id1); got != "2026-11-21T14:03:05Z [INFO] before\n" {
		t.Fatalf("log = %q", got)
	}
}

var concurrentLine = regexp.MustCompile(`^2026-11-21T14:03:05Z \[WARNING\] g(\d+) i(\d+) (x*)$`)

// TestFileConcurrentWrites has 20 goroutines write long entries at once and
// checks that every line arrives whole, exactly once.
func TestFileConcurrentWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		shared bool // one logger for all, or one each (as retries would)
	}{
		{"SharedLogger", true},
		{"LoggerPerGoroutine", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const goroutines, entries = 20, 100
			b := setupFile(t)
			shared := mustOpen(t, b.file, id1)
			var wg sync.WaitGroup
			for g := range goroutines {
				l := shared
				if !tt.shared {
					l = mustOpen(t, b.file, id1)
				}
				wg.Go(func() {
					for i := range entries {
						l.Log(Warning, fmt.Sprintf("g%d i%d %s", g, i, strings.Repeat("x", payload(g, i))))
					}
				})
			}
			wg.Wait()

			checkConcurrentLog(t, b.read(t, id1), goroutines, entries, false)
		})
	}
}

// payload varies the entry sizes, some well over a page.
func payload(g, i int) int { return (g*131 + i*977) % 9000 }

// checkConcurrentLog checks the log written by goroutines writers of
// entries entries each ("g<g> i<i> <payload>"): every entry once and
// intact, and with ordered, each writer's entries in order.
func checkConcurrentLog(t *testing.T, text string, goroutines, entries int, ordered bool) {
	t.Helper()
	lines := strings.Split(text, "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("log does not end with a newline: ...%.80q", last)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != goroutines*entries {
		t.Fatalf("got %d lines, want %d", len(lines), goroutines*entries)
	}
	seen := make(map[[2]int]bool)
	next := make([]int, goroutines)
	for n, line := range lines {
		m := concurrentLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d is broken: %.120q", n, line)
		}
		g, _ := strconv.Atoi(m[1])
		i, _ := strconv.Atoi(m[2])
		if len(m[3]) != payload(g, i) {
			t.Fatalf("line %d (g%d i%d) has %d payload bytes, want %d", n, g, i, len(m[3]), payload(g, i))
		}
		if seen[[2]int{g, i}] {
			t.Fatalf("line g%d i%d twice", g, i)
		}
		seen[[2]int{g, i}] = true
		if ordered {
			if i != next[g] {
				t.Fatalf("g%d: entry %d after %d", g, i, next[g]-1)
			}
			next[g]++
		}
	}
}

func TestFileReadWhileOpen(t *testing.T) {
	t.Parallel()
	b := setupFile(t)
	ctx := context.Background()
	l := mustOpen(t, b.file, id1)

	// Nothing is on disk until the first entry.
	if got, err := b.file.Get(ctx, id1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a log with no entry = %q, %v; want ErrNotFound", got, err)
	}
	l.Log(Info, "first")
	got, err := b.file.Get(ctx, id1, 1<<20)
	if want := "2026-11-21T14:03:05Z [INFO] first\n"; err != nil || string(got) != want {
		t.Fatalf("Get = %q, %v; want %q", got, err, want)
	}
	l.Log(Info, "second")
	got, err = b.file.Get(ctx, id1, 1<<20)
	if want := "2026-11-21T14:03:05Z [INFO] first\n2026-11-21T14:03:05Z [INFO] second\n"; err != nil || string(got) != want {
		t.Fatalf("Get = %q, %v; want %q", got, err, want)
	}
}

func TestFileGetLimit(t *testing.T) {
	t.Parallel()
	const content = "aaaa\nbbbbbbbb\ncc\n" // lines of 5, 9 and 3 bytes: 17 in all
	tests := []struct {
		name    string
		content string
		limit   int64
		want    string
	}{
		{"NoLimit", content, 0, content},
		{"NegativeLimit", content, -1, content},
		{"LimitAboveSize", content, 100, content},
		{"LimitIsSize", content, 17, content},
		{"CutAtLineStart", content, 12, "bbbbbbbb\ncc\n"},
		{"CutAtLastLineStart", content, 3, "cc\n"},
		{"CutInsideFirstLine", content, 15, "bbbbbbbb\ncc\n"},
		{"CutInsideSecondLine", content, 10, "cc\n"},
		{"CutJustAfterLineStart", content, 11, "cc\n"},
		{"CutInsideLastLineKeepsRawTail", content, 2, "c\n"},
		{"LimitOne", content, 1, "\n"},
		{"OneLongLine", "0123456789\n", 4, "789\n"},
		{"UnterminatedTail", "aaaa\nbbbb", 6, "bbbb"},
		{"Empty", "", 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupFile(t)
			b.write(t, id1+".log", tt.content)
			got, err := b.file.Get(context.Background(), id1, tt.limit)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if tt.limit > 0 && int64(len(got)) > tt.limit {
				t.Fatalf("Get returned %d bytes, limit %d", len(got), tt.limit)
			}
			if string(got) != tt.want {
				t.Fatalf("Get(limit %d) = %q, want %q", tt.limit, got, tt.want)
			}
		})
	}
}

func TestFileGetErrors(t *testing.T) {
	t.Parallel()
	b := setupFile(t)
	ctx := context.Background()

	if _, err := b.file.Get(ctx, id1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing log = %v, want ErrNotFound", err)
	}
	if err := os.Mkdir(filepath.Join(b.base, id2+".log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := b.file.Get(ctx, id2, 0); err == nil {
		t.Fatal("Get of a directory: want an error")
	}
	b.write(t, id3+".log", "x\n")
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.file.Get(canceled, id3, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled context = %v", err)
	}
}

// TestFileCreatesNoFileForAJobThatLogsNothing: a logger whose entries are
// all below the level leaves no file behind.
func TestFileCreatesNoFileForAJobThatLogsNothing(t *testing.T) {
	t.Parallel()
	b := setupFileLevel(t, Info, fixedClock(time.Now()))
	l := mustOpen(t, b.file, id1)
	l.Log(Debug, "below the level")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.base, id1+".log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a job that logged nothing has a file: %v", err)
	}
}

// TestFileRefusesSymlink: a link planted as a job's log is neither written
// through nor read through.
func TestFileRefusesSymlink(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no O_NOFOLLOW")
	}
	b := setupFile(t)
	victim := filepath.Join(b.parent, "victim")
	if err := os.WriteFile(victim, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(b.base, id1+".log")); err != nil {
		t.Fatal(err)
	}
	l, err := b.file.Open(id1)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(Fatal, "overwritten")
	if err := l.Close(); err == nil {
		t.Fatal("writing through a symlink: Close reports no error")
	}
	if got, err := b.file.Get(context.Background(), id1, 0); err == nil {
		t.Fatalf("Get through a symlink = %q, want an error", got)
	}
	if data, _ := os.ReadFile(victim); string(data) != "secret\n" {
		t.Fatalf("symlink target changed: %q", data)
	}
}

func TestFileSweeper(t *testing.T) {
	t.Parallel()
	// The sweeper's clock runs 10 days ahead, so that anything this test
	// cannot age by hand (a symlink's own time) looks old too.
	now := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	b := setupFileLevel(t, Info, fixedClock(now))
	const retention = 24 * time.Hour
	old := now.Add(-retention - time.Minute)
	fresh := now.Add(-retention + time.Minute)
	age := func(p string, at time.Time) {
		t.Helper()
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}

	oldLog := b.write(t, id1+".log", "old\n")
	age(oldLog, old)
	oldPeriodic := b.write(t, id3+".log", "old\n")
	age(oldPeriodic, old)
	freshLog := b.write(t, id2+".log", "fresh\n")
	age(freshLog, fresh)
	notLog := b.write(t, "notes.txt", "keep\n")
	age(notLog, old)
	badName := b.write(t, "ABCDEF0123456789ABCDEF01.log", "keep\n")
	age(badName, old)
	noExt := b.write(t, "abcdef0123456789abcdef01", "keep\n")
	age(noExt, old)

	subdir := filepath.Join(b.base, "abcdef0123456789abcdef02.log")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	inSub := filepath.Join(subdir, "abcdef0123456789abcdef03.log")
	if err := os.WriteFile(inSub, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	age(inSub, old)
	age(subdir, old)

	outside := filepath.Join(b.parent, "outside.log")
	if err := os.WriteFile(outside, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	age(outside, old)
	link := filepath.Join(b.base, "abcdef0123456789abcdef04.log")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}

	n, err := b.file.Sweeper(retention).Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != 2 {
		t.Errorf("Sweep removed %d, want 2", n)
	}
	for _, p := range []string{oldLog, oldPeriodic} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: still there (%v)", filepath.Base(p), err)
		}
	}
	for _, p := range []string{freshLog, notLog, badName, noExt, subdir, inSub, outside, link} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: removed (%v)", filepath.Base(p), err)
		}
	}

	n, err = b.file.Sweeper(retention).Sweep(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0, nil", n, err)
	}
}

func TestFileSweeperBadRetention(t *testing.T) {
	t.Parallel()
	for _, retention := range []time.Duration{0, -time.Hour} {
		t.Run(retention.String(), func(t *testing.T) {
			t.Parallel()
			b := setupFile(t)
			p := b.write(t, id1+".log", "x\n")
			n, err := b.file.Sweeper(retention).Sweep(context.Background())
			if err == nil || n != 0 {
				t.Fatalf("Sweep = %d, %v; want an error", n, err)
			}
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("log removed: %v", err)
			}
		})
	}
}

func TestFileSweeperCanceled(t *testing.T) {
	t.Parallel()
	b := setupFileLevel(t, Info, fixedClock(time.Now().Add(48*time.Hour)))
	p := b.write(t, id1+".log", "x\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.file.Sweeper(time.Hour).Sweep(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("log removed after cancel: %v", err)
	}
}
