package joblog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// smallDisk mounts a real tmpfs of size bytes, so that a test can fill it
// or make it read-only. Mounting needs root (CI runs as root); elsewhere
// the test is skipped, saying why.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// A full or read-only FILE directory loses entries, never the job: the
// lines that fit are kept, a read of the log ends with a WARNING entry
// that says why the rest is missing, and the service log warns once per
// cause, not once per job or entry.
func TestLostLogsAreSaidAndWarnedOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		breakDisk func(t *testing.T, dir string)
		want      string // in the note
		kept      bool   // the first entry is kept
	}{
		{name: "FullDisk", want: "no space left on device", kept: true, breakDisk: func(t *testing.T, dir string) {
			// Fill what is left of the disk.
			f, err := os.Create(dir + "/filler")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chunk := make([]byte, 4096)
			for i := 0; i < 1<<12; i++ {
				if _, err := f.Write(chunk); err != nil {
					if errors.Is(err, syscall.ENOSPC) {
						return
					}
					t.Fatal(err)
				}
			}
			t.Fatal("the small disk never filled")
		}},
		{name: "ReadOnly", want: "read-only file system", breakDisk: func(t *testing.T, dir string) {
			if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
				t.Skipf("cannot remount read-only: %v: %s", err, out)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := smallDisk(t, 64<<10)
			var out procs.Buffer
			file, err := NewFile(dir, Debug, fixedClock(t0))
			if err != nil {
				t.Fatal(err)
			}
			m := NewManager([]Backend{file}, file, nil, 0, hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Debug}))
			ids := []string{id1, id2}
			loggers := make([]Logger, len(ids))
			for i, id := range ids {
				l, err := m.Open(id)
				if err != nil {
					t.Fatal(err)
				}
				loggers[i] = l
			}
			if tc.kept {
				// id1 has written before the disk broke; id2 has not.
				loggers[0].Log(Info, "first line, kept")
			}
			tc.breakDisk(t, dir)
			for i := 0; i < 50; i++ {
				for _, l := range loggers {
					l.Log(Info, strings.Repeat("x", 2048))
				}
			}
			for _, l := range loggers {
				if err := l.Close(); err == nil {
					t.Error("Close reports no lost entry")
				}
			}
			for _, id := range ids {
				got, err := m.Get(context.Background(), id, 0)
				if err != nil {
					t.Fatalf("Get %s: %v", id, err)
				}
				text := string(got)
				lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
				last := lines[len(lines)-1]
				if !strings.Contains(last, "[WARNING] berth: this log is incomplete: the FILE job logger could not write it on host") ||
					!strings.Contains(last, tc.want) {
					t.Errorf("log of %s ends with %q; want a WARNING that says %q", id, last, tc.want)
				}
				if kept := strings.Contains(text, "first line, kept"); id == id1 && kept != tc.kept {
					t.Errorf("log of %s keeps the first line: %v, want %v:\n%s", id, kept, tc.kept, text)
				}
			}
			if n := strings.Count(out.String(), "job log entries are being lost"); n != 1 {
				t.Errorf("the service log warned %d times; want once:\n%s", n, out.String())
			}
			// A job that lost nothing reads as before.
			if _, err := m.Get(context.Background(), id3, 0); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get of a job without a log = %v; want ErrNotFound", err)
			}
		})
	}
}

func TestLossesAreBounded(t *testing.T) {
	t.Parallel()
	l := newLosses(hclog.NewNullLogger(), fixedClock(t0))
	for i := 0; i < maxLost+10; i++ {
		l.report(fmt.Sprintf("%024x", i), NameFile, syscall.ENOSPC)
	}
	if _, ok := l.reason(fmt.Sprintf("%024x", 0)); ok {
		t.Error("the oldest loss is still remembered past the bound")
	}
	if r, ok := l.reason(fmt.Sprintf("%024x", maxLost+9)); !ok || !strings.Contains(r, "no space left") {
		t.Errorf("the newest loss = %q, %v", r, ok)
	}
	if len(l.why) != maxLost || len(l.order) != maxLost {
		t.Errorf("%d reasons, %d in order; want %d", len(l.why), len(l.order), maxLost)
	}
}
