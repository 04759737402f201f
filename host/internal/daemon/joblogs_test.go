package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
)

// A full FILE log directory costs jobs their log lines, never the jobs:
// they succeed, their log says why it is incomplete, and the service log
// warns once for all of them.
func TestAFullLogDiskLosesLinesNotJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	f, err := os.Create(dir + "/filler")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := f.Write(make([]byte, 4096)); errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil || i > 1<<12 {
			t.Fatalf("filling the log disk: %v after %d writes", err, i)
		}
	}
	f.Close()

	c := hosttest.NewCluster(t, "demo")
	h := c.Start(t, func(c *config.Config) {
		c.JobLoggers = []config.Logger{{Name: config.LoggerFile, Level: "DEBUG", Settings: map[string]any{config.SettingBaseDir: dir}}}
	})
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, h.Submit(t, "DEMO", demo(map[string]any{"log_lines": 20, "hold_seconds": 0}), nil).ID)
	}
	for _, id := range ids {
		h.WaitStatus(t, id, job.Success, 30*time.Second)
		text := h.LogText(t, id)
		if !strings.Contains(text, "[WARNING] berth: this log is incomplete: the FILE job logger could not write it on host") ||
			!strings.Contains(text, "no space left on device") {
			t.Errorf("log of %s does not say why it is missing:\n%s", id, text)
		}
	}
	if n := strings.Count(h.Log.String(), "job log entries are being lost"); n != 1 {
		t.Errorf("the service log warned %d times of lost job logs; want once:\n%s", n, tail(h.Log.String(), 4000))
	}
	// Another host reading the same directory says so too: the loss is
	// kept in Redis.
	other := c.Start(t, func(cfg *config.Config) {
		cfg.JobLoggers = []config.Logger{{Name: config.LoggerFile, Level: "DEBUG", Settings: map[string]any{config.SettingBaseDir: dir}}}
	})
	for _, id := range ids {
		deadline := time.Now().Add(wait)
		for text := other.LogText(t, id); !strings.Contains(text, "[WARNING] berth: this log is incomplete"); text = other.LogText(t, id) {
			if time.Now().After(deadline) {
				t.Fatalf("log of %s read on another host does not say it is incomplete:\n%s", id, text)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("...%s", s[len(s)-n:])
}

// With FILE job logs, a host asked for the log of a job another host ran
// says so instead of answering an empty log.
func TestALogAskedOfTheWrongHostSaysWhereItIs(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t, "demo")
	a := c.Start(t, nil) // each host has a FILE log directory of its own
	st := a.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 0, "log_lines": 2}), nil)
	a.WaitStatus(t, st.ID, job.Success, wait)
	b := c.Start(t, nil)

	if text := a.LogText(t, st.ID); !strings.Contains(text, "log line 2 of 2") {
		t.Fatalf("the log on the host that ran the job:\n%s", text)
	}
	text := b.LogText(t, st.ID)
	if !strings.Contains(text, "[WARNING] berth: this host keeps no log of job "+st.ID) || !strings.Contains(text, "REDIS job logger") {
		t.Errorf("the log asked of another host = %q; want a line that says where it is", text)
	}
	// A job that has not started has no log anywhere yet: empty, as in Harbor.
	later := b.Submit(t, "DEMO", demo(nil), map[string]any{"kind": "Scheduled", "schedule_delay": 3600})
	if text := b.LogText(t, later.ID); text != "" {
		t.Errorf("the log of a job that has not started = %q; want it empty", text)
	}
}
