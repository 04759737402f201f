package daemon_test

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/host/internal/config"
	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
)

func TestShutdownRequeuesAJobThatOutlivesTheGraceAndAnotherHostRunsIt(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := c.Start(t, func(cfg *config.Config) { cfg.ShutdownGrace = config.Duration(300 * time.Millisecond) })
	st := a.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 3600}), nil)
	running := a.WaitCheckin(t, st.ID, "progress data: %60", wait)
	pids := a.PluginPIDs()

	start := time.Now()
	a.Stop()
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %v with a 300ms grace", took)
	}
	for _, pid := range pids {
		if procs.Alive(pid) {
			t.Errorf("plugin pid %d survived the shutdown", pid)
		}
	}
	b := c.Start(t, nil)
	requeued := b.Get(t, st.ID)
	if requeued.Status != job.Pending && requeued.Status != job.Running {
		t.Fatalf("after the shutdown the job is %s, want it queued again", requeued.Status)
	}
	again := b.WaitCheckin(t, st.ID, "progress data: %60", wait)
	if again.Status != job.Running || again.Revision <= running.Revision {
		t.Fatalf("on the second host: %+v, want Running in a newer revision than %d", again, running.Revision)
	}
}

func TestShutdownLetsAJobFinishWithinTheGrace(t *testing.T) {
	t.Parallel()
	c := hosttest.NewCluster(t)
	a := c.Start(t, func(cfg *config.Config) { cfg.ShutdownGrace = config.Duration(20 * time.Second) })
	st := a.Submit(t, "DEMO", demo(map[string]any{"hold_seconds": 1}), nil)
	a.WaitCheckin(t, st.ID, "progress data: %60", wait)
	a.Stop()
	b := c.Start(t, nil)
	if got := b.Get(t, st.ID); got.Status != job.Success || got.Revision != st.Revision {
		t.Fatalf("after a graceful shutdown: %+v, want Success in the first revision", got)
	}
}
