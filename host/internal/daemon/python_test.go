package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/host/internal/job"
	"github.com/berth-dev/berth/host/internal/testkit/hosttest"
	"github.com/berth-dev/berth/host/internal/testkit/plugintest"
	"github.com/berth-dev/berth/host/internal/testkit/procs"
	"github.com/berth-dev/berth/sdk/proto"
)

// pyPython is the interpreter of the Python plugin's shebang: Debian's,
// with python3-grpcio, python3-protobuf and python3-cryptography.
const pyPython = "/usr/bin/python3"

// pyRequire skips the test when the Python plugin cannot run here.
func pyRequire(t *testing.T) {
	t.Helper()
	out, err := exec.Command(pyPython, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
	if err != nil {
		t.Skipf("%s lacks the Python sdk's packages (apt-get install -y python3-grpcio python3-protobuf python3-cryptography, as make deps does): %v\n%s", pyPython, err, out)
	}
}

func pyParams(extra map[string]any) map[string]any {
	p := map[string]any{"image": "demo"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// pyStart starts a host whose only plugin is the real pydemo.
func pyStart(t *testing.T) *hosttest.Host {
	t.Helper()
	pyRequire(t)
	return hosttest.NewCluster(t, "pydemo").Start(t, nil)
}

func TestPythonPluginRunsToSuccessWithItsOutput(t *testing.T) {
	t.Parallel()
	h := pyStart(t)
	sub := h.Subscribe(t)
	st := h.Submit(t, "PYDEMO", pyParams(map[string]any{"hold_seconds": 1, "log_lines": 3}), nil)
	// Both check-ins, in order.
	for _, msg := range []string{"progress data: %30", "progress data: %60"} {
		hosttest.WaitEvent(t, sub, wait, "check-in "+msg, func(ev job.Event) bool {
			return ev.JobID == st.ID && ev.Reason == job.CheckedIn && ev.CheckIn == msg
		})
	}
	running := h.Get(t, st.ID)
	if running.Status != job.Running || running.CheckIn != "progress data: %60" {
		t.Fatalf("while holding: %+v", running)
	}
	if log := h.LogText(t, st.ID); !strings.Contains(log, "log line 3 of 3") {
		t.Fatalf("log while running lacks the job's lines:\n%s", log)
	}
	done := h.WaitStatus(t, st.ID, job.Success, wait)
	var out struct {
		Image       string  `json:"image"`
		HeldSeconds float64 `json:"held_seconds"`
		LogLines    int     `json:"log_lines"`
		Attempt     int     `json:"attempt"`
	}
	if err := json.Unmarshal(done.Output, &out); err != nil || out.Image != "demo" || out.HeldSeconds != 1 || out.LogLines != 3 || out.Attempt != 1 {
		t.Fatalf("output %s (%v), want the image, 1 second held, 3 lines, attempt 1", done.Output, err)
	}
	log := h.LogText(t, st.ID)
	for _, want := range []string{"[INFO] PYDEMO job started: job_id=" + st.ID + " image=demo attempt=1", "[INFO] log line 1 of 3", "[INFO] PYDEMO job done"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestPythonPluginFailureIsRetriedByItsRulesThenError(t *testing.T) {
	t.Parallel()
	h := pyStart(t)
	sub := h.Subscribe(t)
	st := h.Submit(t, "PYDEMO", pyParams(map[string]any{"fail": true}), nil)
	// A failure the job type retries shows Error while it waits (event
	// RetryWait); the last one is final (Failed).
	retries := 0
	hosttest.WaitEvent(t, sub, 2*wait, "the final failure", func(ev job.Event) bool {
		if ev.JobID != st.ID {
			return false
		}
		if ev.Reason == job.RetryWait {
			retries++
		}
		return ev.Reason == job.Failed
	})
	got := h.Get(t, st.ID)
	if got.Status != job.Error || got.CheckIn != "progress data: %60" {
		t.Fatalf("stats of the failed job: %+v", got)
	}
	// max_fails 3, should_retry: three runs, two retries, then Error.
	if retries != 2 {
		t.Errorf("%d retries, want 2 (max_fails 3)", retries)
	}
	log := h.LogText(t, st.ID)
	for _, want := range []string{"attempt 1 failing as asked", "attempt 2 failing as asked", "attempt 3 failing as asked",
		"attempt 3 failed: PYDEMO failed as asked (parameter fail=true)", "retrying in 1s (failure 1 of at most 3)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "attempt 4") || strings.Contains(log, "failure 3 of at most 3") {
		t.Errorf("a retry after three failures (max_fails 3):\n%s", log)
	}
}

func TestPythonPluginBadParametersAre400NamingThem(t *testing.T) {
	t.Parallel()
	h := pyStart(t)
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		// The schema the plugin declares, checked by the host.
		{"MissingImage", map[string]any{}, `parameter "image" is required`},
		{"ImageNotString", map[string]any{"image": 7}, `"image" must be a string`},
		{"HoldOutOfRange", pyParams(map[string]any{"hold_seconds": 4000}), `"hold_seconds" must be a number from 0 to 3600, got 4000`},
		{"LogLinesNotWhole", pyParams(map[string]any{"log_lines": 1.5}), `"log_lines" must be a whole number`},
		{"UnknownParameter", pyParams(map[string]any{"colour": "red"}), `"colour"`},
		// The plugin's validate, over the session-less Validate call.
		{"WrongPrefix", map[string]any{"image": "busybox"}, `parameter "image" must start with "demo", got "busybox"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Do(t, http.MethodPost, "/api/v1/jobs", hosttest.Auth, hosttest.Request("PYDEMO", tc.params, nil))
			var body struct {
				Code    int    `json:"code"`
				Details string `json:"details"`
			}
			r.JSON(t, &body)
			if r.Status != http.StatusBadRequest || body.Code != 10013 || !strings.Contains(body.Details, tc.want) {
				t.Fatalf("got %d %s\nwant 400, code 10013, details containing %q", r.Status, r.Body, tc.want)
			}
		})
	}
}

func TestPythonPluginStopsWithinASecond(t *testing.T) {
	t.Parallel()
	h := pyStart(t)
	for _, op := range []string{"stop", "cancel"} {
		t.Run(strings.ToUpper(op[:1])+op[1:], func(t *testing.T) {
			st := h.Submit(t, "PYDEMO", pyParams(map[string]any{"hold_seconds": 3600}), nil)
			h.WaitCheckin(t, st.ID, "progress data: %60", wait)
			start := time.Now()
			if r := h.Action(t, st.ID, op); r.Status != http.StatusNoContent {
				t.Fatalf("%s: %d %s", op, r.Status, r.Body)
			}
			h.WaitStatus(t, st.ID, job.Stopped, wait)
			took := time.Since(start)
			if took > time.Second {
				t.Fatalf("%s took %v to reach Stopped, more than a second", op, took)
			}
			t.Logf("%s took %v to reach Stopped", op, took)
			if log := h.LogText(t, st.ID); !strings.Contains(log, "received op command: "+op) {
				t.Fatalf("the plugin did not see %s:\n%s", op, log)
			}
		})
	}
}

// pyOnePID waits until the host runs exactly one plugin process whose
// pid is not old, and returns it.
func pyOnePID(t *testing.T, h *hosttest.Host, old int) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		pids := h.PluginPIDs()
		if len(pids) == 1 && pids[0] > 0 && pids[0] != old {
			return pids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin pids %v; want one other than %d within %v", pids, old, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPythonPluginKilledIsRestarted(t *testing.T) {
	t.Parallel()
	h := pyStart(t)
	pid := pyOnePID(t, h, 0)
	st := h.Submit(t, "PYDEMO", pyParams(map[string]any{"hold_seconds": 3600}), nil)
	h.WaitCheckin(t, st.ID, "progress data: %60", wait)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	next := pyOnePID(t, h, pid)
	// The killed run failed; the job is retried by its rules on the new
	// process.
	h.Wait(t, st.ID, wait, "a second attempt on the restarted plugin", func(s *job.Stats) bool {
		return s.Status == job.Running && strings.Contains(h.LogText(t, st.ID), "attempt=2")
	})
	if r := h.Action(t, st.ID, "stop"); r.Status != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.Status, r.Body)
	}
	h.WaitStatus(t, st.ID, job.Stopped, wait)
	after := h.Submit(t, "PYDEMO", pyParams(map[string]any{"hold_seconds": 0}), nil)
	h.WaitStatus(t, after.ID, job.Success, wait)
	if got := pyOnePID(t, h, pid); got != next {
		t.Fatalf("plugin pid %d, then %d: restarted again", next, got)
	}
	if !strings.Contains(h.Log.String(), "plugin restarted") {
		t.Fatalf("the host log does not say it restarted the plugin:\n%s", h.Log.String())
	}
}

// pyJobPlugin is go-plugin's client side of the Plugin service, as the
// host's own is.
type pyJobPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (pyJobPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the test serves nothing")
}

func (pyJobPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return proto.NewPluginClient(conn), nil
}

// TestPythonPluginSpeaksGoPlugin drives pydemo with go-plugin's own
// client, configured as the host's: the handshake with AutoMTLS, gRPC's
// health service (Ping asks for "plugin"), the Plugin service, and
// GRPCController's Shutdown, which must end the process gracefully
// (go-plugin waits two seconds, then kills a plugin that ignores it).
func TestPythonPluginSpeaksGoPlugin(t *testing.T) {
	t.Parallel()
	pyRequire(t)
	logs := &procs.Buffer{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  proto.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{proto.ProtocolVersion: {proto.PluginName: pyJobPlugin{}}},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Cmd:              exec.Command(plugintest.Binary(t, "pydemo")),
		AutoMTLS:         true,
		StartTimeout:     wait,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "client", Output: logs, Level: hclog.Debug}),
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs)
	}
	if v := client.NegotiatedVersion(); v != proto.ProtocolVersion {
		t.Fatalf("negotiated protocol %d, want %d", v, proto.ProtocolVersion)
	}
	if err := rpc.Ping(); err != nil {
		t.Fatalf("health check of service %q: %v", plugin.GRPCServiceName, err)
	}
	raw, err := rpc.Dispense(proto.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	desc, err := raw.(proto.PluginClient).Describe(ctx, &proto.DescribeRequest{})
	if err != nil {
		t.Fatalf("Describe over mTLS: %v", err)
	}
	if len(desc.GetJobs()) != 1 || desc.GetJobs()[0].GetName() != "PYDEMO" || !strings.HasPrefix(desc.GetSdk(), "python/") ||
		!desc.GetJobs()[0].GetValidates() || desc.GetJobs()[0].GetMaxFails() != 3 {
		t.Fatalf("Describe answered %v", desc)
	}
	start := time.Now()
	client.Kill()
	if took := time.Since(start); took > 1500*time.Millisecond || !client.Exited() || strings.Contains(logs.String(), "plugin failed to exit gracefully") {
		t.Fatalf("Kill took %v, exited %v: GRPCController.Shutdown did not end the plugin\n%s", took, client.Exited(), logs)
	}
}
