package core

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/berth-dev/berth/sdk/proto"
)

func TestServeRefusesJobsItCannotServe(t *testing.T) {
	t.Parallel()
	for name, jobs := range map[string]map[string]Job{
		"None":    nil,
		"ZeroJob": {"A": {}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Refused before go-plugin is involved: no Test config needed.
			if err := Serve(jobs, ServeOptions{}); err == nil || !strings.HasPrefix(err.Error(), "sdk.Serve") {
				t.Errorf("Serve = %v, want checkJobs' error", err)
			}
		})
	}
}

func TestGRPCPluginHasNoClient(t *testing.T) {
	t.Parallel()
	if _, err := (&grpcPlugin{}).GRPCClient(context.Background(), nil, nil); err == nil {
		t.Error("the plugin side made a client")
	}
}

// serveInProcess serves jobs with Serve in go-plugin's test mode and dials
// it over real gRPC (without go-plugin's client, which in test mode neither
// closes its connection nor stops watching the plugin's pid); Serve must
// return when the test ends.
func serveInProcess(t *testing.T, jobs map[string]Job, conf Config) proto.PluginClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- Serve(jobs, ServeOptions{Config: conf, Logger: hclog.NewNullLogger(),
			Test: &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}})
	}()
	rc := receive(t, reattach, "the plugin to serve")
	conn, err := grpc.NewClient(rc.Addr.Network()+":"+rc.Addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		receive(t, closed, "the plugin server to stop")
		if err := receive(t, served, "Serve to return"); err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return proto.NewPluginClient(conn)
}

// Serve in test mode serves the Plugin service over go-plugin's gRPC: a
// host describes, configures and runs a job, and Serve returns when its
// context ends.
func TestServeOverGoPlugin(t *testing.T) {
	t.Parallel()
	var applied atomic.Value
	c := serveInProcess(t, map[string]Job{"J": jobOf(func(jc *JobContext, params []byte) error {
		return jc.SetOutput(string(params))
	})}, Config{Schema: []byte(`{}`), Apply: func(raw []byte) error { applied.Store(string(raw)); return nil }})
	ctx := context.Background()
	desc, err := c.Describe(ctx, &proto.DescribeRequest{})
	if err != nil || len(desc.GetJobs()) != 1 || desc.GetJobs()[0].GetName() != "J" || string(desc.GetConfigSchema()) != `{}` {
		t.Fatalf("Describe = %v, %v", desc, err)
	}
	if resp, err := c.Configure(ctx, &proto.ConfigureRequest{Config: []byte(`{"a":1}`)}); err != nil || resp.GetError() != "" || applied.Load() != `{"a":1}` {
		t.Fatalf("Configure = %v, %v; applied %v", resp, err, applied.Load())
	}
	sess, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Send(&proto.HostMessage{Msg: &proto.HostMessage_Start{Start: &proto.Start{JobId: "1", JobName: "J", Parameters: []byte(`{"n":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	m, err := sess.Recv()
	if out := m.GetOutcome(); err != nil || out.GetKind() != proto.Outcome_KIND_SUCCESS || string(out.GetOutput()) != `"{\"n\":1}"` {
		t.Fatalf("Recv = %v, %v", m, err)
	}
	if err := sess.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Recv(); err == nil {
		t.Error("the session goes on after the host closed it")
	}
}

// A host that cancels its Session call (as the host's session.close does),
// or whose connection breaks, ends the session's stream context rather than
// closing its side; the runs must see ErrHostGone then too.
func TestCancelledSessionEndsRunsWithErrHostGone(t *testing.T) {
	t.Parallel()
	running, cause := make(chan struct{}), make(chan error, 1)
	c := serveInProcess(t, map[string]Job{"WAIT": jobOf(func(jc *JobContext, _ []byte) error {
		close(running)
		<-jc.Done()
		cause <- context.Cause(jc)
		return nil
	})}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Send(&proto.HostMessage{Msg: &proto.HostMessage_Start{Start: &proto.Start{JobId: "1", JobName: "WAIT"}}}); err != nil {
		t.Fatal(err)
	}
	receive(t, running, "the run to start")
	cancel()
	if got := receive(t, cause, "the run to end"); !errors.Is(got, ErrHostGone) {
		t.Errorf("context.Cause = %v, want %v", got, ErrHostGone)
	}
}

func TestWatchParent(t *testing.T) {
	t.Parallel()
	t.Run("ParentGone", func(t *testing.T) {
		t.Parallel()
		gone := make(chan struct{})
		// A parent the process does not have is a parent that is gone.
		returned := async(func() {
			watchParent(context.Background(), os.Getppid()+1, time.Millisecond, time.Second, func() { close(gone) }, nil)
		})
		receive(t, gone, "gone to be called")
		receive(t, returned, "watchParent to return")
	})
	t.Run("ParentAlive", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		var called atomic.Bool
		returned := async(func() {
			watchParent(ctx, os.Getppid(), time.Millisecond, time.Millisecond, func() { called.Store(true) }, func() { called.Store(true) })
		})
		quiet(t, returned, "watchParent returning while the parent is alive")
		cancel()
		receive(t, returned, "watchParent to return once its context ended")
		if called.Load() {
			t.Error("gone or frozen was called while the parent is alive and running")
		}
	})
}

// A stopped process is seen as stopped (state T), and a stop of the
// host is reported once it has lasted long enough, once per stop.
func TestAFrozenParentIsSeen(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: a stopped parent cannot be seen here")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if processStopped(pid) {
		t.Fatal("a running process is seen stopped")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processStopped(pid) {
		if time.Now().After(deadline) {
			t.Fatal("a stopped process is not seen stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	deadline = time.Now().Add(5 * time.Second)
	for processStopped(pid) {
		if time.Now().After(deadline) {
			t.Fatal("a continued process is still seen stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}

	t0 := time.Unix(1000, 0)
	f := freeze{after: 3 * time.Second}
	steps := []struct {
		stopped bool
		at      time.Duration
		fire    bool
	}{
		{false, 0, false}, {true, 1 * time.Second, false}, {true, 3 * time.Second, false},
		{true, 4 * time.Second, true}, {true, 10 * time.Second, false}, // once per stop
		{false, 11 * time.Second, false}, {true, 12 * time.Second, false}, {true, 15 * time.Second, true},
	}
	for i, s := range steps {
		if got := f.observe(s.stopped, t0.Add(s.at)); got != s.fire {
			t.Errorf("step %d (stopped %v at %s): fire = %v, want %v", i, s.stopped, s.at, got, s.fire)
		}
	}
}
