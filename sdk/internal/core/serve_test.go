package core

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
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
		returned := async(func() { watchParent(context.Background(), os.Getppid()+1, time.Millisecond, func() { close(gone) }) })
		receive(t, gone, "gone to be called")
		receive(t, returned, "watchParent to return")
	})
	t.Run("ParentAlive", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		var called atomic.Bool
		returned := async(func() {
			watchParent(ctx, os.Getppid(), time.Millisecond, func() { called.Store(true) })
		})
		quiet(t, returned, "watchParent returning while the parent is alive")
		cancel()
		receive(t, returned, "watchParent to return once its context ended")
		if called.Load() {
			t.Error("gone was called while the parent is alive")
		}
	})
}
