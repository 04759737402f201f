package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/host/internal/pluginhost"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

// A plugin process that stops answering (here: SIGSTOP) holds neither a
// submission (Validate is bounded) nor its jobs: it is reported
// unresponsive, killed and restarted, and its running job fails.
func TestAHungPluginIsReportedAndRestarted(t *testing.T) {
	t.Parallel()
	log := &procs.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := pluginhost.Load(ctx, pluginhost.Options{
		Dir: plugintest.Dir(t, "demo"), Callbacks: newRecorder(),
		Logger:      hclog.New(&hclog.LoggerOptions{Output: log, Level: hclog.Debug}),
		CallTimeout: 300 * time.Millisecond, ProbeEvery: 100 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond, ProbeFailures: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	before := h.Health()
	if len(before) != 1 || before[0].Status != pluginhost.PluginUp || before[0].PID == 0 {
		t.Fatalf("health at start: %+v", before)
	}
	run := make(chan error, 1)
	go func() {
		_, err := h.Run(context.Background(), pluginhost.RunRequest{Name: "DEMO", JobID: fmt.Sprintf("%024x", 42),
			Parameters: params(t, map[string]any{"image": "demo", "hold_seconds": 60})})
		run <- err
	}()
	pid := before[0].PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT) //nolint:errcheck // gone by then, normally
	// The signal takes effect asynchronously: wait until the process is
	// stopped, or a call may still be answered.
	for deadline := time.Now().Add(5 * time.Second); !procs.Stopped(pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the plugin process did not stop")
		}
	}

	start := time.Now()
	err = h.Validate(context.Background(), "DEMO", params(t, map[string]any{"image": "demo"}))
	if !errors.Is(err, pluginhost.ErrPluginFailed) || time.Since(start) > 5*time.Second {
		t.Fatalf("Validate of a hung plugin = %v after %s; want ErrPluginFailed within its timeout", err, time.Since(start))
	}

	sawUnresponsive := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		hl := h.Health()[0]
		if hl.Status == pluginhost.PluginUnresponsive {
			sawUnresponsive = true
		}
		if hl.Status == pluginhost.PluginUp && hl.PID != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health %+v: the hung plugin was not restarted (log:\n%s)", hl, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawUnresponsive && !strings.Contains(log.String(), "plugin stopped answering") {
		t.Error("the hung plugin was never reported unresponsive")
	}
	select {
	case err := <-run:
		if !errors.Is(err, pluginhost.ErrPluginFailed) {
			t.Errorf("the running job of the hung plugin ended with %v, want ErrPluginFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the running job of the hung plugin did not end")
	}
	if err := h.Validate(context.Background(), "DEMO", params(t, map[string]any{"image": "demo"})); err != nil {
		t.Fatalf("Validate after the restart: %v", err)
	}
}
